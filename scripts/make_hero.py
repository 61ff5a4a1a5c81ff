"""Draw assets/hero.png: held-out mini-wiki people aged by the course's models, beside the ground truth.

    .venv/bin/python scripts/make_hero.py --home .course_data/course

Ages the first held-out young people with the course's shipped models, as chapter 5
does. Top row of each person: the held-out face and our edits at several ages;
bottom row: the same person re-rendered at those ages by mini-wiki's renderer (the truth).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TARGET_YEARS = (25, 30, 35, 40, 45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a course home (its face cache is built if missing)")
    parser.add_argument("--people", type=int, default=3)
    args = parser.parse_args()
    os.environ["FACE_AGING_HOME"] = str(args.home.resolve())
    from course_utils import course  # after FACE_AGING_HOME is set
    from course_utils.aging import LatentCache, age_face
    from course_utils.data import render_ground_truth
    from course_utils.widgets import years_to_position

    faces = course.ensure_faces(progress=False)
    _, val_idx = faces.split()
    models = course.chapter_models(faces, progress=False)
    generator, encoder = models.generator, models.encoder
    means = course.group_means(faces)  # as chapter 5: the edit's cleaned change
    young = [i for i in val_idx if faces.labels[i] == 0][:args.people]
    fig, axes = plt.subplots(2 * len(young), len(TARGET_YEARS) + 1, figsize=(9, 3.3 * len(young)))
    cache = LatentCache()
    for row, index in enumerate(young):
        face, path = faces.images[index], faces.table["full_path"].iloc[index]
        age = int(faces.table["age"].iloc[index])
        top, bottom = axes[2 * row], axes[2 * row + 1]
        top[0].imshow(face)
        top[0].set_title(f"held-out, {age} y", fontsize=9)
        bottom[0].axis("off")
        for column, years in enumerate(TARGET_YEARS, start=1):
            result = age_face(face, years_to_position(years, faces.age_groups), generator, encoder,
                              source=0, refine_steps=100, cache=cache, group_means=means)
            top[column].imshow(result.aged)
            top[column].set_title(f"ours, {years} y", fontsize=9)
            bottom[column].imshow(render_ground_truth(faces.dataset_root, path, age + years - TARGET_YEARS[0]))
            bottom[column].set_title(f"truth, {age + years - TARGET_YEARS[0]} y", fontsize=9)
        for ax in (*top, *bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Held-out people aged by the course's models (top rows) and truly rendered at each age (bottom)")
    plt.tight_layout()
    ASSETS.mkdir(exist_ok=True)
    fig.savefig(ASSETS / "hero.png", dpi=100)
    print("wrote", ASSETS / "hero.png")


if __name__ == "__main__":
    main()
