"""Model tensors: age conditions (one-hot groups, soft mixes) and images between uint8 and [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Integer group labels (N,) -> float one-hot conditions (N, n_classes)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    return torch.nn.functional.one_hot(labels, n_classes).float()


def soft_condition(position: float, n_classes: int) -> torch.Tensor:
    """A condition at a fractional group position, e.g. 0.5 is half way from 0 to 1.

    Neighbouring one-hots are mixed linearly, so the generator sees a condition
    between two groups it was trained on.
    """
    if not 0 <= position <= n_classes - 1:
        raise ValueError(f"position {position} is outside [0, {n_classes - 1}]")
    condition = torch.zeros(n_classes)
    lower = int(position)
    upper = min(lower + 1, n_classes - 1)
    weight = position - lower
    condition[lower] += 1 - weight
    condition[upper] += weight
    return condition


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
