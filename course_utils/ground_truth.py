"""Chapter 5's yardstick: held-out mini-wiki people moved to the other age group, against their true renders.

mini-wiki's renderer can draw the same person at any age, so an aged face can be
compared with the truth, a measurement real-data courses cannot make. Here: the
held-out faces chapter 5 reports (and the others, where ``scripts/`` tune and
probe), the mean face of each group (the population's average change, and the
"input + mean group difference" baseline), and :class:`GroundTruthSet`, the one
set-up chapter 5 and the scripts share.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .age_change import population_change
from .data import FaceCache, render_ground_truth
from .metrics import rms
from .tensors import one_hot, to_model_range

REPORTED_FACES = 96  # chapter 5 reports on this many held-out faces; scripts/tune_edit.py tunes on the others


def reported_faces(val_idx: np.ndarray) -> np.ndarray:
    """The held-out faces chapter 5 reports on (the same in every run)."""
    return val_idx[np.random.default_rng(0).choice(len(val_idx), REPORTED_FACES, replace=False)]


def tuning_faces(val_idx: np.ndarray) -> np.ndarray:
    """The held-out faces chapter 5 does not report: where ``scripts/`` tune and probe the edit (sorted)."""
    return np.setdiff1d(val_idx, reported_faces(val_idx))


def group_means(faces: FaceCache) -> torch.Tensor:
    """The mean training face of each age group, (K, 3, H, W) in [-1, 1]: the edit's population prior
    (``age_change.EditSettings``) and the "input + mean group difference" baseline."""
    train, _ = faces.split()
    images, labels = faces.images[train], faces.labels[train]
    return torch.stack([to_model_range(images[labels == group]).mean(0) for group in range(len(faces.age_groups))])


def aging_targets(labels, n_groups: int) -> np.ndarray:
    """The group chapter 5 ages each face to: the oldest group, and faces already in it to the youngest
    (with two groups: the other one)."""
    labels = np.asarray(labels)
    return np.where(labels == n_groups - 1, 0, n_groups - 1)


def ground_truth_at_other_group(faces: FaceCache, indices) -> tuple[np.ndarray, np.ndarray]:
    """mini-wiki only: each face re-rendered as the same person, moved to its :func:`aging_targets` group
    by the distance between the group centres -> (target labels (N,), truth uint8 (N, H, W, 3))."""
    indices = np.asarray(indices)
    labels = faces.labels[indices]
    targets = aging_targets(labels, len(faces.age_groups))
    centres = np.array([np.mean(group) for group in faces.age_groups])
    years = faces.table["age"].to_numpy()[indices] + centres[targets] - centres[labels]
    truth = np.stack([render_ground_truth(faces.dataset_root, faces.table["full_path"].iloc[i], age,
                                          image_size=faces.images.shape[1]) for i, age in zip(indices, years)])
    return targets, truth


@dataclass
class GroundTruthSet:
    """Held-out faces with the group each moves to and the true render there, all in [-1, 1].

    ``photos``, ``truth``: (N, 3, H, W); ``source``, ``target``: one-hot (N, K); ``means``: the group means.
    """

    rows: np.ndarray
    photos: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    truth: torch.Tensor
    means: torch.Tensor

    @classmethod
    def build(cls, faces: FaceCache, rows) -> "GroundTruthSet":
        rows = np.asarray(rows)
        n_groups = len(faces.age_groups)
        targets, truth = ground_truth_at_other_group(faces, rows)
        return cls(rows, to_model_range(faces.images[rows]), one_hot(torch.as_tensor(faces.labels[rows]), n_groups),
                   one_hot(torch.as_tensor(targets), n_groups), to_model_range(truth), group_means(faces))

    def mean_difference(self) -> torch.Tensor:
        """The baseline: each photo plus the average change between its groups (old - young or back)."""
        return (self.photos + population_change(self.means, self.source, self.target)).clamp(-1, 1)

    def distance(self, outputs: torch.Tensor) -> float:
        """Mean RMS distance of outputs (clipped to [-1, 1]) to the truth."""
        return float(rms(outputs.clamp(-1, 1), self.truth).mean())
