"""Does tuning the generator to each photo (pivotal tuning) make the edit's age change better?

NOT part of the course's method: a probe of one way to close chapter 5's gap to the 10% goal. For
held-out faces that chapter 5 does not report, z is found as in chapter 5 (encoder + 100 refinement
steps), then a copy of the generator is tuned for a few Adam steps so that G(z, source) matches the
photo (the idea of Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real Images").
Both edits, with the course's generator and with the tuned one, are cleaned with the default
``EditSettings`` and scored against ground truth, next to "input + mean group difference".

Run after chapters 1-4 (about 2 minutes for 60 faces on 2 cores):
    FACE_AGING_HOME=.course_data/course .venv/bin/python scripts/per_person_tuning_probe.py [faces] [steps] [lr]
"""
from __future__ import annotations

import copy
import sys

import torch

from course_utils import course
from course_utils.age_change import EditSettings, clean_change
from course_utils.aging import encode, refine_latent
from course_utils.metrics import rms


def tuned_change(generator, z, photo, source, target, steps: int, lr: float):
    """(G'(z, target) - G'(z, source), G'(z, source)) for a copy G' of ``generator`` tuned to ``photo``."""
    tuned = copy.deepcopy(generator).eval()  # eval: BatchNorm keeps its training statistics
    optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
    for _ in range(steps):
        loss = (tuned(z, source) - photo).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        at_source = tuned(z, source)
        return tuned(z, target) - at_source, at_source


def main(count: int = 60, steps: int = 30, lr: float = 1e-3) -> None:
    torch.manual_seed(0)
    faces = course.ensure_faces(progress=False)
    _, val_idx = faces.split()
    held_out = course.tuning_faces(val_idx)[:count]
    generator = course.ensure_generator(faces, progress=False)
    encoder = course.ensure_encoder(generator, progress=False)
    truth = course.GroundTruthSet.build(faces, held_out)
    photos, source, target, means = truth.photos, truth.source, truth.target, truth.means
    z, _ = refine_latent(generator, encode(encoder, photos), photos, source)
    z = z.detach()
    with torch.no_grad():
        at_source = generator(z, source)
        plain_change = generator(z, target) - at_source
    tuned = [tuned_change(generator, z[i:i + 1], photos[i:i + 1], source[i:i + 1], target[i:i + 1], steps, lr)
             for i in range(len(held_out))]
    tuned_raw, tuned_source = torch.cat([t[0] for t in tuned]), torch.cat([t[1] for t in tuned])

    baseline = truth.distance(truth.mean_difference())
    print(f"{len(held_out)} held-out faces; per-person tuning: {steps} Adam steps at lr {lr}")
    print(f"reconstruction RMS to the photo: course generator {rms(at_source, photos).mean():.4f}, "
          f"tuned {rms(tuned_source, photos).mean():.4f}")
    for name, raw in (("course generator", plain_change), ("tuned per person", tuned_raw)):
        edit = truth.distance(photos + clean_change(raw, source, target, means, EditSettings(), guide=photos))
        print(f"{name}: edit {edit:.4f} vs input + mean group difference {baseline:.4f} ({edit / baseline - 1:+.1%})")
        print(f"RESULT edit_vs_mean_difference_{name.split()[0]} {edit / baseline - 1:+.3f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 60, int(args[1]) if len(args) > 1 else 30, float(args[2]) if len(args) > 2 else 1e-3)
