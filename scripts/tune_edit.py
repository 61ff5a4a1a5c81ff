"""Choose age_change.EditSettings on held-out mini-wiki faces that chapter 5 does not report.

    FACE_AGING_HOME=.course_data/course .venv/bin/python scripts/tune_edit.py

With the course's shipped models (as chapter 5 uses them), every held-out face outside
chapter 5's reported 96 is moved to the other age group and compared with its ground-truth
render. Prints the grid, the best settings, and the baseline "input + mean group
difference" for scale. Run it again whenever the shipped generator changes.
"""
from __future__ import annotations

import itertools

import pandas as pd
import torch

from course_utils import course
from course_utils.age_change import EditSettings, clean_change, clean_change_with_average, population_change
from course_utils.aging import encode, refine_latent


def main() -> None:
    faces = course.ensure_faces(progress=False)
    _, val_idx = faces.split()
    tune = course.tuning_faces(val_idx)
    models = course.chapter_models(faces, progress=False)
    generator, encoder = models.generator, models.encoder
    truth = course.GroundTruthSet.build(faces, tune)
    photos, source, target, means = truth.photos, truth.source, truth.target, truth.means
    z, _ = refine_latent(generator, encode(encoder, photos), photos, source)
    with torch.no_grad():
        raw = generator(z, target) - generator(z, source)
    rms = truth.distance
    baseline = rms(truth.mean_difference())
    rows = []
    average = population_change(means, source, target)
    strength = average.abs().mean(dim=1, keepdim=True)
    guides = [(0, 1e-4)] + list(itertools.product((2, 4, 6), (1e-4, 1e-3, 1e-2)))  # radius 0: no guided filter
    # The guided filter is linear in the signal it filters, so the blend of any weight is the same blend of
    # the filtered model change and the filtered average: one filtering each per mask and guide setting.
    for (radius, eps), mask_scale in itertools.product(guides, (0.0, 0.025, 0.05, 0.1)):
        masked = raw * (strength / mask_scale).clamp(max=1.0) if mask_scale > 0 else raw
        parts = [clean_change_with_average(change, None, EditSettings(guide_radius=radius, guide_eps=eps),
                                           guide=photos) for change in (masked, average)]
        for weight in [w / 10 for w in range(11)]:
            rows.append({"mask_scale": mask_scale, "model_weight": weight, "guide_radius": radius, "guide_eps": eps,
                         "rms": rms(photos + weight * parts[0] + (1 - weight) * parts[1])})
    table = pd.DataFrame(rows).sort_values("rms")
    default = EditSettings()  # the blend above, checked against the package's own cleaning once
    row = table[(table.mask_scale == default.mask_scale) & (table.model_weight == default.model_weight)
                & (table.guide_radius == default.guide_radius) & (table.guide_eps == default.guide_eps)]
    assert abs(row["rms"].iloc[0] - rms(photos + clean_change(raw, source, target, means, default, guide=photos))) < 1e-5
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
