"""How an age becomes the condition vector the generator and discriminator read.

The models take any float condition vector, so the age can be coded in more
than one way. Three schemes are known by name:

* ``"groups"``: the course's default, one-hot over the face cache's age groups
  (the labels of chapter 1; chapters 2-5);
* ``"six-groups"``: Age-cGAN's six one-hot groups 0-18, 19-29, 30-39, 40-49,
  50-59, 60+ (Antipov, Baccouche & Dugelay 2017);
* ``"thermometer"``: an ordinal code of age thresholds 15, 25, ..., 75:
  ``condition[k] = clip((age - threshold_k) / 10, 0, 1)``. Every threshold
  below the age is 1, the one the age is passing is a fraction, the rest 0, so
  the code is continuous in the age and older always means "more ones".

A bottom-floor module: the trainers, ``aging`` and ``age_axis`` import it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .tensors import one_hot

SCHEMES = ("groups", "six-groups", "thermometer")
SIX_GROUPS = ((0, 18), (19, 29), (30, 39), (40, 49), (50, 59), (60, 100))
THERMOMETER_THRESHOLDS = (15, 25, 35, 45, 55, 65, 75)
THERMOMETER_STEP = 10  # years from one threshold to the next: the width of the fractional bit
# The ages a scheme is trained and sampled over: mini-wiki's 15-80. Real IMDB-WIKI goes wider, and the
# thermometer simply saturates outside its thresholds (all zeros at 15 and under, all ones at 85 and over).
AGE_RANGE = (15, 80)


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"condition scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    return scheme


def condition_size(scheme: str, n_groups: int | None = None) -> int:
    """The length C of the scheme's condition vector (``n_groups`` for "groups")."""
    check_scheme(scheme)
    if scheme == "six-groups":
        return len(SIX_GROUPS)
    if scheme == "thermometer":
        return len(THERMOMETER_THRESHOLDS)
    if n_groups is None:
        raise ValueError('the "groups" scheme has as many dimensions as the face cache has age groups')
    return int(n_groups)


def group_of_ages(ages, age_groups) -> np.ndarray:
    """The index of the inclusive (low, high) group holding each age; ValueError for an age in none.

    Ages count in whole years (18.5 is 18), as the dataset's ages do.
    """
    ages = np.floor(np.asarray(ages, dtype=np.float64).reshape(-1))
    lows = np.array([low for low, _ in age_groups], dtype=np.float64)
    highs = np.array([high for _, high in age_groups], dtype=np.float64)
    index = np.searchsorted(lows, ages, side="right") - 1
    inside = (index >= 0) & (ages <= highs[np.clip(index, 0, None)])
    if not inside.all():
        raise ValueError(f"ages {ages[~inside][:5].tolist()} are outside the age groups {list(age_groups)}")
    return index


def condition_for_ages(ages, scheme: str, age_groups=None) -> torch.Tensor:
    """Age in years (N,) -> float conditions (N, C) of ``scheme``.

    "six-groups" (and "groups", which needs the cache's ``age_groups``) give the one-hot of the group
    holding each age; "thermometer" gives the continuous threshold code.
    """
    check_scheme(scheme)
    ages = torch.as_tensor(np.asarray(ages, dtype=np.float32)).reshape(-1)
    if scheme == "thermometer":
        thresholds = torch.tensor(THERMOMETER_THRESHOLDS, dtype=torch.float32)
        return ((ages[:, None] - thresholds[None, :]) / THERMOMETER_STEP).clamp(0, 1)
    if scheme == "groups":
        if age_groups is None:
            raise ValueError('the "groups" scheme needs the face cache\'s age_groups')
        groups = [tuple(group) for group in age_groups]
    else:
        groups = SIX_GROUPS
    return one_hot(torch.as_tensor(group_of_ages(ages.numpy(), groups)), len(groups))


def random_conditions(scheme: str, n_classes: int, count: int, noise: torch.Generator,
                      device: torch.device | str) -> torch.Tensor:
    """``count`` random conditions of ``scheme`` (for the encoder's training pairs), drawn with ``noise``.

    Group schemes draw a group uniformly (exactly as the course's two-group code does); the
    thermometer draws an age uniformly in :data:`AGE_RANGE`.
    """
    check_scheme(scheme)
    if scheme == "thermometer":
        low, high = AGE_RANGE
        ages = low + (high - low) * torch.rand(count, generator=noise, device=device)
        thresholds = torch.tensor(THERMOMETER_THRESHOLDS, dtype=torch.float32, device=device)
        return ((ages[:, None] - thresholds[None, :]) / THERMOMETER_STEP).clamp(0, 1)
    labels = torch.randint(0, n_classes, (count,), generator=noise, device=device)
    return one_hot(labels, n_classes).to(device)


def sample_grid_conditions(scheme: str, n_classes: int) -> torch.Tensor:
    """The conditions of the rows of a training sample grid: one per group, or ages 20, 30, ..., 80."""
    check_scheme(scheme)
    if scheme == "thermometer":
        return condition_for_ages(np.arange(20, AGE_RANGE[1] + 1, 10), scheme)
    return torch.eye(n_classes)


def scheme_of(generator: nn.Module) -> str:
    """The condition scheme a generator was trained with ("groups" unless it says otherwise)."""
    return getattr(generator, "condition_scheme", "groups")


def scheme_condition(scheme: str):
    """``condition_of(years) -> (C,)`` for a named scheme (six groups: the one-hot of the age's group)."""
    return lambda years: condition_for_ages([years], scheme)[0]
