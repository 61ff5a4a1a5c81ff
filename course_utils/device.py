"""Where training runs and how fast: device choice, mixed precision, data placement."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .conditioning import one_hot


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    ``prefer`` ("cpu", "cuda", "cuda:1", "mps") forces a choice; an
    unavailable one raises a RuntimeError instead of silently falling back.
    """
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("device 'mps' was asked for but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Precision:
    """Mixed-precision settings for one device: autocast dtype and gradient scaler.

    On CUDA, bf16 autocast where the GPU supports it (no scaler needed), else
    fp16 with a ``GradScaler``. Elsewhere everything stays float32 and the
    scaler is a pass-through.
    """

    device: torch.device
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self):
        """A context that runs the forward pass in the chosen precision."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def precision_for(device: torch.device, amp: bool = True) -> Precision:
    """The mixed-precision settings for ``device``; ``amp`` is ignored off CUDA."""
    dtype = None
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu", enabled=dtype == torch.float16)
    return Precision(device, dtype, scaler)


def resolve_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """``None`` means automatic: channels_last on CUDA (tensor cores like NHWC), not on the CPU."""
    return device.type == "cuda" if channels_last is None else bool(channels_last)


def fits_on_device(nbytes: int, device: torch.device, headroom: float = 0.5) -> bool:
    """Whether ``nbytes`` of data may live on ``device`` (using at most ``headroom`` of its free memory)."""
    if device.type != "cuda":
        return True  # CPU (and MPS unified memory): the data is already in this memory.
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= free * headroom


class DeviceDataset:
    """uint8 faces and integer labels, kept where batches are made.

    The whole uint8 array stays on the training device when it fits, so a
    batch is one index operation plus normalisation on the device: no
    DataLoader, no per-image Python work in the hot loop.
    """

    def __init__(
        self,
        images_uint8: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        n_classes: int,
        device: torch.device,
        channels_last: bool = False,
    ):
        images = torch.as_tensor(images_uint8)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes - 1}], got {labels.min()}..{labels.max()}")
        self.device, self.n_classes, self.channels_last = device, n_classes, channels_last
        self.on_device = fits_on_device(images.numel(), device)
        home = device if self.on_device else torch.device("cpu")
        self.images = images.contiguous().to(home)
        if home.type == "cpu" and device.type == "cuda":
            self.images = self.images.pin_memory()
        self.labels = labels.to(home)

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) float in [-1, 1] and one-hot conditions (B, n_classes), on the device."""
        indices = indices.to(self.images.device)
        images = self.images[indices].to(self.device, non_blocking=True)
        labels = self.labels[indices].to(self.device, non_blocking=True)
        # NHWC uint8 permuted to NCHW *is* channels_last in memory, so that layout costs nothing.
        images = images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if not self.channels_last:
            images = images.contiguous()
        return images, one_hot(labels, self.n_classes).to(images.dtype)


def set_cpu_threads(threads: int | None) -> None:
    """Fix the CPU thread count (results on the CPU repeat bit for bit only at a fixed count)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
