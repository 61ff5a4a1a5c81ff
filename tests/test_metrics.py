"""psnr / ssim / mean_pairwise_distance against known values and scipy references."""
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import pdist

from course_utils.metrics import mean_pairwise_distance, psnr, ssim


def random_images(count=3, size=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, size, size, generator=generator) * 2 - 1


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """Wang et al. SSIM via scipy's Gaussian filter (sigma 1.5, radius 5), border cropped.

    This is scikit-image's gaussian_weights=True, use_sample_covariance=False recipe.
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for channel_a, channel_b in zip(a.astype(np.float64), b.astype(np.float64)):
        def blur(x):
            return gaussian_filter(x, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

        mu_a, mu_b = blur(channel_a), blur(channel_b)
        var_a = blur(channel_a**2) - mu_a**2
        var_b = blur(channel_b**2) - mu_b**2
        cov = blur(channel_a * channel_b) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        values.append(ssim_map.mean())
    return float(np.mean(values))


def test_psnr_identical_is_infinite():
    images = random_images()
    assert torch.isinf(psnr(images, images)).all()


def test_psnr_known_value_per_image():
    a = torch.zeros(2, 3, 8, 8)
    b = a.clone()
    b[0] += 0.1  # mse 0.01
    b[1] += 1.0  # mse 1
    expected = torch.tensor([10 * math.log10(4 / 0.01), 10 * math.log10(4)])
    assert torch.allclose(psnr(a, b), expected, atol=1e-4)


def test_ssim_identical_is_one():
    images = random_images()
    assert torch.allclose(ssim(images, images), torch.ones(3), atol=1e-6)


def test_ssim_constant_images_match_the_closed_form():
    # With no variance SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    a = torch.full((1, 3, 16, 16), 0.2)
    b = torch.full((1, 3, 16, 16), -0.4)
    c1 = (0.01 * 2.0) ** 2
    expected = (2 * 0.2 * -0.4 + c1) / (0.2**2 + 0.4**2 + c1)
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-5)


def test_ssim_matches_scipy_reference():
    a = random_images(2, 32, seed=1)
    b = (a + 0.3 * random_images(2, 32, seed=2)).clamp(-1, 1)
    ours = ssim(a, b)
    for i in range(2):
        assert ours[i].item() == pytest.approx(reference_ssim(a[i].numpy(), b[i].numpy()), abs=1e-5)


def test_ssim_is_symmetric_and_drops_with_noise():
    a = random_images(1, 32, seed=3)
    slightly = (a + 0.05 * random_images(1, 32, seed=4)).clamp(-1, 1)
    heavily = (a + 0.8 * random_images(1, 32, seed=4)).clamp(-1, 1)
    assert ssim(a, slightly).item() == pytest.approx(ssim(slightly, a).item(), abs=1e-6)
    assert 1 > ssim(a, slightly).item() > ssim(a, heavily).item()


def test_single_image_without_batch_dimension():
    a, b = random_images(1)[0], random_images(1, seed=5)[0]
    assert psnr(a, b).shape == (1,) and ssim(a, b).shape == (1,)


def test_shape_problems_are_value_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        psnr(torch.zeros(16, 16), torch.zeros(16, 16))


def test_mean_pairwise_distance_matches_scipy_with_small_chunks():
    images = random_images(10, 8, seed=6)
    expected = pdist(images.flatten(1).double().numpy()).mean()
    assert mean_pairwise_distance(images, chunk_size=3) == pytest.approx(expected, rel=1e-9)


def test_mean_pairwise_distance_of_collapsed_batch_is_zero():
    images = random_images(1).expand(6, -1, -1, -1)
    assert mean_pairwise_distance(images) == pytest.approx(0.0, abs=1e-6)


def test_mean_pairwise_distance_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        mean_pairwise_distance(random_images(1))
