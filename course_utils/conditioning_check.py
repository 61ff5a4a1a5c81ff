"""Does the generator's age label work? Measurements with shared noise and a classifier.

The trick throughout is *shared noise*: one batch of z is rendered once with
every age label, so any difference between the renders is caused by the label
alone. An independent classifier (``course_utils.classifier``) then judges
whether each render looks like the group it was conditioned on.

All functions run the generator in eval mode without gradients, in batches,
and draw z from a ``torch.Generator`` on the CPU, so a seed gives the same
numbers on any device and for any batch size.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .classifier import evaluating, module_device, predict_groups
from .tensors import one_hot, soft_condition

RENDER_BATCH_SIZE = 128


def _generator_sizes(generator: nn.Module, n_classes: int | None, z_dim: int | None) -> tuple[int, int]:
    """Condition and latent sizes: explicit values, else the generator's attributes."""
    n_classes = n_classes if n_classes is not None else getattr(generator, "n_classes", None)
    z_dim = z_dim if z_dim is not None else getattr(generator, "z_dim", None)
    if n_classes is None or z_dim is None:
        raise ValueError(f"{type(generator).__name__} has no n_classes/z_dim attributes; "
                         "pass n_classes= and z_dim= explicitly")
    if n_classes < 2:
        raise ValueError(f"conditioning needs at least 2 groups, got n_classes={n_classes}")
    return int(n_classes), int(z_dim)


def shared_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """n latent vectors (n, z_dim) from a seeded CPU generator: the same on every device."""
    if n < 1:
        raise ValueError(f"need at least one latent vector, got n={n}")
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def _render_batches(generator: nn.Module, z: torch.Tensor, n_classes: int, batch_size: int):
    """Yield (n_classes, b, 3, H, W) renders of consecutive z batches, one per label."""
    device = module_device(generator)
    with evaluating(generator):
        for start in range(0, len(z), batch_size):
            z_batch = z[start:start + batch_size].to(device)
            renders = []
            for label in range(n_classes):
                condition = one_hot(torch.full((len(z_batch),), label), n_classes).to(device)
                renders.append(generator(z_batch, condition))
            yield torch.stack(renders)


def render_shared_noise(generator: nn.Module, n: int = 16, seed: int = 0,
                        n_classes: int | None = None, z_dim: int | None = None,
                        batch_size: int = RENDER_BATCH_SIZE) -> torch.Tensor:
    """Render one batch of z with every age label: tensor (n_classes, n, 3, H, W) on the CPU.

    ``result[label, i]`` is z number i rendered with ``label``; the z are the
    same across labels. ``n_classes`` and ``z_dim`` default to the generator's.
    """
    n_classes, z_dim = _generator_sizes(generator, n_classes, z_dim)
    z = shared_noise(n, z_dim, seed)
    return torch.cat([renders.cpu() for renders in _render_batches(generator, z, n_classes, batch_size)],
                     dim=1)


def label_difference_map(generator: nn.Module, n: int = 512, seed: int = 0,
                         n_classes: int | None = None, z_dim: int | None = None,
                         batch_size: int = RENDER_BATCH_SIZE) -> np.ndarray:
    """Where does the age label act? Mean |G(z, next group) - G(z, group)| per pixel, (H, W).

    Averaged over ``n`` shared z, the three colour channels and, with more than
    two groups, over all consecutive group pairs (0->1, 1->2, ...), so every age
    step counts equally. Values are in model units: a black-to-white change is 2.
    """
    n_classes, z_dim = _generator_sizes(generator, n_classes, z_dim)
    z = shared_noise(n, z_dim, seed)
    total = None
    for renders in _render_batches(generator, z, n_classes, batch_size):
        # (pairs, b, 3, H, W) -> sum over z of the mean over pairs and channels.
        step = (renders[1:] - renders[:-1]).abs().mean(dim=(0, 2)).sum(dim=0).double().cpu()
        total = step if total is None else total + step
    return (total / n).numpy()


def conditioning_report(generator: nn.Module, classifier: nn.Module, n_per_class: int = 500,
                        seed: int = 0, n_classes: int | None = None, z_dim: int | None = None,
                        batch_size: int = RENDER_BATCH_SIZE) -> dict:
    """Judge the generator's conditioning with an independent classifier.

    ``n_per_class`` shared z are rendered with every label and classified.
    Returns a dict of plain numbers (ready for ``record_summary``):

    * ``group_accuracy``: per group, the fraction of its renders the classifier
      puts in that group; ``accuracy``: their mean (equal counts per group, so
      this is also the balanced accuracy).
    * ``flip_rate``: the fraction of z whose prediction follows the label from
      the first to the last group: pred(G(z, first)) == first AND
      pred(G(z, last)) == last. A generator that ignores its label scores 0.
    * ``chance``: 1 / n_classes, the accuracy of a label-blind generator judged
      by a classifier that guesses.
    * ``confusion``: counts[conditioned group][predicted group].
    """
    n_classes, z_dim = _generator_sizes(generator, n_classes, z_dim)
    classifier_classes = getattr(classifier, "n_classes", n_classes)
    if classifier_classes != n_classes:
        raise ValueError(f"the classifier knows {classifier_classes} groups "
                         f"but the generator is conditioned on {n_classes}")
    z = shared_noise(n_per_class, z_dim, seed)
    predictions = torch.cat(
        [torch.stack([predict_groups(classifier, renders[label]) for label in range(n_classes)])
         for renders in _render_batches(generator, z, n_classes, batch_size)],
        dim=1,
    )  # (n_classes, n_per_class)
    confusion = torch.stack([torch.bincount(predictions[label], minlength=n_classes)
                             for label in range(n_classes)])
    group_accuracy = (confusion.diagonal().double() / n_per_class).tolist()
    flipped = (predictions[0] == 0) & (predictions[-1] == n_classes - 1)
    return {
        "group_accuracy": group_accuracy,
        "accuracy": float(np.mean(group_accuracy)),
        "flip_rate": float(flipped.double().mean()),
        "chance": 1.0 / n_classes,
        "n_per_class": n_per_class,
        "confusion": confusion.tolist(),
    }


def conditioning_table(report: dict, group_names: list[str] | None = None) -> pd.DataFrame:
    """One row per conditioned group: how often the classifier agreed with the label."""
    n_classes = len(report["group_accuracy"])
    names = group_names or [f"group {label}" for label in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} group names for {n_classes} groups")
    table = pd.DataFrame(report["confusion"], index=names,
                         columns=[f"predicted {name}" for name in names])
    table.index.name = "conditioned on"
    table["conditioning accuracy"] = report["group_accuracy"]
    return table


def label_interpolation_strip(generator: nn.Module, z: torch.Tensor, steps: int = 7,
                              n_classes: int | None = None) -> torch.Tensor:
    """Render each z with conditions sliding from the first to the last group.

    Returns (k * steps, 3, H, W) on the CPU, ordered z by z, so
    ``torchvision.utils.make_grid(strip, nrow=steps)`` shows one face per row.
    The in-between conditions come from ``course_utils.tensors.soft_condition``.
    """
    if not torch.is_tensor(z) or z.ndim != 2:
        raise ValueError(f"z must be a 2-D tensor (k, z_dim), got "
                         f"{tuple(z.shape) if torch.is_tensor(z) else type(z).__name__}")
    n_classes, z_dim = _generator_sizes(generator, n_classes, z.shape[1])
    if getattr(generator, "z_dim", z_dim) != z_dim:
        raise ValueError(f"z has {z_dim} dimensions but the generator expects {generator.z_dim}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (first and last group), got {steps}")
    # float64 linspace ends exactly on the last group, which soft_condition requires.
    positions = np.linspace(0.0, n_classes - 1, steps)
    conditions = torch.stack([soft_condition(float(p), n_classes) for p in positions])
    device = module_device(generator)
    with evaluating(generator):
        images = generator(z.float().repeat_interleave(steps, dim=0).to(device),
                           conditions.repeat(len(z), 1).to(device))
    return images.cpu()
