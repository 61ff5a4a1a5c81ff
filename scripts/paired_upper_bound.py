"""How much of a person's age change a photo holds: a CNN trained on true before/after pairs.

Real data never has such pairs (the same photo, 20 years apart); mini-wiki's renderer does. This
script is NOT part of the course's method: it trains a small encoder-decoder on 3,000 training
faces and their ground truth 20 years on/back (the change truth - photo), then scores it on the
held-out faces that chapter 5 does not report, next to "input + mean group difference".
If it beats that baseline by far more than the GAN edit does, the information is in the photo
and the GAN's unpaired age change is what limits the edit.

Run after chapters 1-4 (about 10 minutes on 2 cores):
    FACE_AGING_HOME=.course_data/course .venv/bin/python scripts/paired_upper_bound.py [seconds]
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from course_utils import course
from course_utils.tensors import one_hot


class ChangePredictor(nn.Module):
    """photo + source one-hot maps -> change, a 3-level encoder-decoder with the input skipped to the end."""

    def __init__(self, n_classes: int = 2, width: int = 32):
        super().__init__()
        channels = 3 + n_classes
        self.down = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(), nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU())
        self.out = nn.Conv2d(width + channels, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.up(self.down(x)), x], 1))


def with_label_maps(photos: torch.Tensor, labels: np.ndarray, n_classes: int) -> torch.Tensor:
    maps = one_hot(torch.as_tensor(labels), n_classes)[:, :, None, None].expand(-1, -1, *photos.shape[2:])
    return torch.cat([photos, maps], 1)


def main(seconds: float = 600.0) -> None:
    torch.manual_seed(0)
    faces = course.ensure_faces(progress=False)
    train_idx, val_idx = faces.split()
    held_out = course.tuning_faces(val_idx)
    train_idx = np.random.default_rng(0).choice(train_idx, size=min(3000, len(train_idx)), replace=False)
    n_classes = len(faces.age_groups)

    training, test = course.GroundTruthSet.build(faces, train_idx), course.GroundTruthSet.build(faces, held_out)
    x_train = with_label_maps(training.photos, faces.labels[train_idx], n_classes)
    x_test = with_label_maps(test.photos, faces.labels[held_out], n_classes)
    photos_train, truth_train, photos_test = training.photos, training.truth, test.photos
    rms = test.distance
    baseline = rms(test.mean_difference())
    model = ChangePredictor(n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started, step = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        batch = torch.randint(len(x_train), (64,))
        loss = (model(x_train[batch]) - (truth_train[batch] - photos_train[batch])).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
    with torch.no_grad():
        paired = rms(photos_test + model(x_test))
    print(f"{len(held_out)} held-out faces; {step} steps on {len(train_idx)} true pairs in {seconds:.0f} s")
    print(f"unchanged {rms(photos_test):.4f}; input + mean group difference {baseline:.4f}; "
          f"paired CNN {paired:.4f} ({paired / baseline - 1:+.1%})")
    print(f"RESULT paired_cnn_vs_mean_difference {paired / baseline - 1:+.3f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 600.0)
