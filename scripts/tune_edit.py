"""Choose age_change.EditSettings on held-out mini-wiki faces that chapter 5 does not report.

Run after chapters 1-4 (it loads the course home's models):
    FACE_AGING_HOME=.course_data/course .venv/bin/python scripts/tune_edit.py
Every held-out face outside chapter 5's reported 96 is moved to the other age group
and compared with its ground-truth render. Prints the grid, the best settings, and
the baseline "input + mean group difference" for scale.
"""
from __future__ import annotations

import itertools

import pandas as pd
import torch

from course_utils import course
from course_utils.age_change import EditSettings, clean_change
from course_utils.aging import encode, refine_latent


def main() -> None:
    faces = course.ensure_faces(progress=False)
    _, val_idx = faces.split()
    tune = course.tuning_faces(val_idx)
    generator = course.ensure_generator(faces, progress=False)
    encoder = course.ensure_encoder(generator, progress=False)
    truth = course.GroundTruthSet.build(faces, tune)
    photos, source, target, means = truth.photos, truth.source, truth.target, truth.means
    z, _ = refine_latent(generator, encode(encoder, photos), photos, source)
    with torch.no_grad():
        raw = generator(z, target) - generator(z, source)
    rms = truth.distance
    baseline = rms(truth.mean_difference())
    rows = []
    guides = [(0, 1e-4)] + list(itertools.product((2, 4, 6), (1e-4, 1e-3, 1e-2)))  # radius 0: no guided filter
    for smoothing, mask_scale, weight, (radius, eps) in itertools.product((1, 3), (0.0, 0.05, 0.1),
                                                                          (0.2, 0.4, 0.6, 1.0), guides):
        settings = EditSettings(smoothing, mask_scale, weight, radius, eps)
        change = clean_change(raw, source, target, means, settings, guide=photos)
        rows.append({"smoothing": smoothing, "mask_scale": mask_scale, "model_weight": weight,
                     "guide_radius": radius, "guide_eps": eps, "rms": rms(photos + change)})
    table = pd.DataFrame(rows).sort_values("rms")
    table["vs mean difference"] = table["rms"] / baseline - 1
    print(f"{len(tune)} held-out faces (not chapter 5's reported {course.REPORTED_FACES})")
    print(f"unchanged input {rms(photos):.4f}; input + mean group difference {baseline:.4f}; "
          f"raw edit {rms(photos + raw):.4f}")
    print(table.head(12).round(4).to_string(index=False))
    best = table.iloc[0]
    print(f"RESULT edit_rms_best {best['rms']:.4f}")
    print(f"RESULT edit_vs_mean_difference {best['vs mean difference']:+.3f}")


if __name__ == "__main__":
    main()
