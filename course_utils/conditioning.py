"""Age conditions: one-hot vectors for groups, soft vectors between groups."""
from __future__ import annotations

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
