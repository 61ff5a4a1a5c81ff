"""Conversions between the uint8 image cache and model tensors."""
from __future__ import annotations

import numpy as np
import torch


def to_model_range(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> float tensor (N, 3, H, W) in [-1, 1]."""
    tensor = torch.as_tensor(images)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    return tensor.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float tensor (N, 3, H, W) in [-1, 1] -> uint8 numpy (N, H, W, 3)."""
    images = images.detach().float().cpu().clamp(-1, 1)
    return ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
