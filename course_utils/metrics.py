"""Image quality and diversity measures for model tensors in [-1, 1].

``data_range`` is 2.0 by default because model images span [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Root-mean-square distance per image: (N, C, H, W) pairs -> (N,), in the images' units."""
    a, b = _paired_batches(a, b)
    return (a - b).pow(2).flatten(1).mean(dim=1).sqrt()


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: (N, C, H, W) pairs -> (N,).

    Identical images give ``inf``.
    """
    a, b = _paired_batches(a, b)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004): (N, C, H, W) pairs -> (N,).

    Uses an 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03, population
    (co)variances and only window positions fully inside the image ("valid"),
    averaged over positions and channels. Identical images give 1.0.
    """
    a, b = _paired_batches(a, b)
    channels, height, width = a.shape[1:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {height}x{width}")
    a, b = a.double(), b.double()  # variances are small differences of large terms
    down = _valid_filter_matrix(_gaussian_profile(SSIM_WINDOW, SSIM_SIGMA, a.device), height).T
    across = _valid_filter_matrix(_gaussian_profile(SSIM_WINDOW, SSIM_SIGMA, a.device), width)

    def local_mean(x: torch.Tensor) -> torch.Tensor:
        # The Gaussian window is separable: filter the columns, then the rows, each as one matrix
        # product (a float64 convolution has no fast CPU kernel; a float64 matmul has).
        return down @ x @ across

    mean_a, mean_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mean_a**2
    var_b = local_mean(b * b) - mean_b**2
    covariance = local_mean(a * b) - mean_a * mean_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / (
        (mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim_map.flatten(1).mean(dim=1).float()


def high_frequency_energy(images: torch.Tensor) -> float:
    """Mean absolute Laplacian over pixels and channels of (N, C, H, W) images in [-1, 1].

    Pixel-to-pixel noise ("speckle") raises it; smooth skin and soft edges keep
    it low. Interior pixels only, so the image border adds nothing.
    """
    images = torch.as_tensor(images).detach().float()
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=images.device)
    channels = images.shape[1]
    laplacian = F.conv2d(images, kernel.expand(channels, 1, 3, 3), groups=channels)
    return float(laplacian.abs().mean())


def speckle_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """High-frequency energy of generated faces over that of real faces: 1.0 is as crisp as real
    faces, above it noisier (speckle), below it blurrier."""
    return high_frequency_energy(generated) / high_frequency_energy(real)


def mean_pairwise_distance(images: torch.Tensor, chunk_size: int = 256) -> float:
    """Mean L2 distance between all pairs of images, a mode-collapse check.

    A collapsed generator gives a value near 0. Computed in row chunks so
    memory stays at ``chunk_size * N`` distances instead of ``N * N``.
    """
    flat = torch.as_tensor(images).detach().flatten(1).double()
    count = flat.shape[0]
    if count < 2:
        raise ValueError(f"need at least 2 images for pairwise distances, got {count}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, count, chunk_size):
        distances = torch.cdist(flat[start : start + chunk_size], flat)
        total += distances.sum()
    pairs = count * (count - 1)  # each unordered pair was counted twice; the diagonal is 0
    return float(total / pairs)


def _valid_filter_matrix(profile: torch.Tensor, length: int) -> torch.Tensor:
    """(length, length - k + 1) matrix M: ``x @ M`` filters the last axis of x, valid positions only."""
    k = len(profile)
    matrix = profile.new_zeros(length, length - k + 1)
    for start in range(length - k + 1):
        matrix[start:start + k, start] = profile
    return matrix


def _gaussian_profile(size: int, sigma: float, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    profile = torch.exp(-(coords**2) / (2 * sigma**2))
    return profile / profile.sum()


def _paired_batches(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept (C, H, W) or (N, C, H, W) tensors of the same shape."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim == 3:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    if a.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W) or (C, H, W), got shape {tuple(a.shape)}")
    return a.detach().float(), b.detach().float()
