"""The age change the edit adds to a photo: the generator's raw change, cleaned.

G(z, target) - G(z, source) carries the generator's pixel noise and touches pixels
that age does not (background, clothes). :class:`EditSettings` says how it is
cleaned: masked to where the population's faces change with age, blended with
that average change, and aligned to the photo's own edges by a guided filter.
Chapter 5 shows each step and measures it against ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EditSettings:
    """How the generator's age change is cleaned before it is added to the photo.

    The raw change G(z, target) - G(z, source) carries the generator's pixel
    noise, and changes pixels (background, clothes) that age does not touch. So:

    * ``smoothing``: a box filter this many pixels wide removes the pixel noise;
    * ``mask_scale``: where the population's average change (from ``group_means``)
      is below this (in [-1, 1] units), the change fades out; at or above it, it
      is kept whole;
    * ``model_weight``: the change is ``model_weight`` x the model's change +
      (1 - model_weight) x the population's average change. A per-person
      estimate shrunk towards the average: less variance for a little bias.
    * ``guide_radius``, ``guide_eps``: a guided filter (He, Sun & Tang, ECCV
      2010) with the photo as its guide. In each (2r+1)-pixel window the change
      becomes a linear function of the photo's colours, so it follows the
      person's own edges (their hairline, not the average one). 0 turns it off.

    Mask and blend need ``group_means``; the guided filter needs the photo
    (``clean_change(..., guide=photo)``). Each step runs when what it needs is given.
    The defaults were chosen by ``scripts/tune_edit.py`` on held-out faces that
    chapter 5 does not report; ``EditSettings.raw()`` is the plain change.
    """

    smoothing: int = 1
    mask_scale: float = 0.025
    model_weight: float = 0.6
    guide_radius: int = 2
    guide_eps: float = 1e-4

    def __post_init__(self):
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise ValueError(f"smoothing must be an odd width >= 1, got {self.smoothing}")
        if self.mask_scale < 0:
            raise ValueError(f"mask_scale must be >= 0, got {self.mask_scale}")
        if not 0 <= self.model_weight <= 1:
            raise ValueError(f"model_weight must be in [0, 1], got {self.model_weight}")
        if self.guide_radius < 0 or self.guide_eps <= 0:
            raise ValueError(f"guide_radius must be >= 0 and guide_eps > 0, got {self.guide_radius}, {self.guide_eps}")

    @classmethod
    def raw(cls) -> "EditSettings":
        """No cleaning: the change is exactly G(z, target) - G(z, source)."""
        return cls(smoothing=1, mask_scale=0.0, model_weight=1.0, guide_radius=0)


def population_change(group_means: torch.Tensor, source_condition: torch.Tensor,
                      target_condition: torch.Tensor) -> torch.Tensor:
    """The average face change between the conditions: (target - source) weights of the group means.

    ``group_means``: (K, 3, H, W) mean training face per group, in [-1, 1]; conditions (N, K),
    one-hot or soft. Returns (N, 3, H, W).
    """
    weights = (target_condition - source_condition).to(group_means)
    return torch.einsum("nk,kchw->nchw", weights, group_means)


def clean_change(raw: torch.Tensor, source_condition: torch.Tensor, target_condition: torch.Tensor,
                 group_means: torch.Tensor | None = None, settings: EditSettings = EditSettings(),
                 guide: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth, mask, blend and edge-align a raw change (N, 3, H, W) as :class:`EditSettings` describes.

    The average change comes from the mean face of each group (``group_means``) and the two conditions.
    ``guide``: the photos (N, 3, H, W) in [-1, 1] the change will be added to.
    """
    average = None
    if group_means is not None:
        average = population_change(group_means.float().cpu(), source_condition.float().cpu(),
                                    target_condition.float().cpu())
    return clean_change_with_average(raw, average, settings, guide)


def clean_change_with_average(raw: torch.Tensor, average: torch.Tensor | None,
                              settings: EditSettings = EditSettings(),
                              guide: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`clean_change` given the population's average change (N, 3, H, W) for the same move
    directly (chapter 6: mean face at the target age − mean face at the source age); None skips mask
    and blend."""
    change = raw.float().cpu()
    if settings.smoothing > 1:
        change = torch.nn.functional.avg_pool2d(change, settings.smoothing, stride=1,
                                                padding=settings.smoothing // 2, count_include_pad=False)
    if average is not None:
        average = average.float().cpu().expand_as(change)
        if settings.mask_scale > 0:
            strength = average.abs().mean(dim=1, keepdim=True)
            change = change * (strength / settings.mask_scale).clamp(max=1.0)
        change = settings.model_weight * change + (1 - settings.model_weight) * average
    if guide is not None and settings.guide_radius > 0:
        change = guided_filter(guide.float().cpu(), change, settings.guide_radius, settings.guide_eps)
    return change


def guided_filter(guide: torch.Tensor, signal: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """``signal`` (N, C, H, W) smoothed so that it follows the edges of ``guide`` (N, 3, H, W).

    The colour guided filter of He, Sun & Tang (ECCV 2010): in every window of
    (2 radius + 1)^2 pixels, fit signal ~ a . guide + b by ridge regression
    (``eps`` is the ridge), then average the fitted a and b over the windows
    covering each pixel. Where the guide is flat, the signal is averaged;
    across a guide edge, it may jump.
    """
    def box(x):
        return torch.nn.functional.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    n, _, height, width = guide.shape
    guide_mean, signal_mean = box(guide), box(signal)
    mean_last = guide_mean.permute(0, 2, 3, 1)  # (N, H, W, 3)
    products = torch.stack([box(guide[:, i:i + 1] * guide[:, j:j + 1])[:, 0] for i in range(3) for j in range(3)], -1)
    covariance = products.view(n, height, width, 3, 3) - mean_last[..., :, None] * mean_last[..., None, :]
    cross = torch.stack([box(guide[:, i:i + 1] * signal) for i in range(3)], -1)  # (N, C, H, W, 3)
    cross = cross - mean_last[:, None] * signal_mean[..., None]
    slopes = torch.linalg.solve(covariance[:, None] + eps * torch.eye(3), cross[..., None])[..., 0]
    offsets = signal_mean - (slopes * mean_last[:, None]).sum(-1)
    slopes = torch.stack([box(slopes[..., k]) for k in range(3)], -1)
    return (slopes * guide.permute(0, 2, 3, 1)[:, None]).sum(-1) + box(offsets)
