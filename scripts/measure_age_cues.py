"""Measure how strongly mini-wiki's age cues separate the two default age groups, on held-out people.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python scripts/measure_age_cues.py --home /tmp/wt1_home

Builds (or reuses) the default 6000-photo mini-wiki and its 64x64 face cache in
the course home ``--home``, splits the faces by person exactly like the course
(``FaceCache.split``), trains chapter 3's two classifiers the way the
course does (``LogisticBaseline`` and ``AgeClassifier``, ``current_preset().classifier_epochs``
epochs, seed 0) and reports their balanced accuracy on the held-out people.
The renderer is calibrated so that the linear baseline stays well below
perfect (about 0.90 or less) while the CNN still learns the task (about
0.85-0.98). The last two lines are ``RESULT logistic_balanced_acc <v>`` and
``RESULT cnn_balanced_acc <v>``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True,
                        help="course home to build mini-wiki and the face cache in (e.g. .course_data/course)")
    parser.add_argument("--dataset-root", type=Path, default=None,
                        help="an extracted wiki_crop folder to measure instead of the home's mini-wiki")
    parser.add_argument("--entries", type=int, default=6000, help="photos in a freshly built mini-wiki")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ["FACE_AGING_HOME"] = str(args.home.resolve())
    os.environ["FACE_AGING_DATASET"] = "mini-wiki"
    sys.path.insert(0, str(REPO))
    import torch

    from course_utils import course
    from course_utils.classifier import AgeClassifier, LogisticBaseline, evaluate_classifier, train_classifier
    from course_utils.data import load_face_cache
    from course_utils.data.download import download_dataset

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start = time.time()
    root = args.dataset_root or download_dataset("mini-wiki", mini_wiki_entries=args.entries, progress=False)
    faces = load_face_cache("mini-wiki", image_size=64, workers=args.workers, progress=False, dataset_root=root)
    train, val = faces.split()
    labels = faces.labels
    print(f"dataset {root}: {len(faces)} faces, groups {faces.label_names}; "
          f"train {len(train)} / held-out {len(val)} faces "
          f"({faces.table['identity'].iloc[val].nunique()} held-out people); {time.time() - start:.0f} s")

    results = {}
    for name, build in (("logistic", lambda: LogisticBaseline(n_classes=len(faces.age_groups))),
                        ("cnn", lambda: AgeClassifier(n_classes=len(faces.age_groups)))):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(course.CLASSIFIER_SEED)
            model = build()
        tic = time.time()
        model, _ = train_classifier(model, faces.images[train], labels[train], epochs=course.current_preset().classifier_epochs,
                                    seed=course.CLASSIFIER_SEED, progress=False)
        scores = evaluate_classifier(model, faces.images[val], labels[val])
        results[name] = scores["balanced_accuracy"]
        recalls = ", ".join(f"{g}: {r:.3f}" for g, r in zip(faces.label_names, scores["group_recall"]))
        print(f"{name:8s} accuracy {scores['accuracy']:.3f}  balanced {scores['balanced_accuracy']:.3f}  "
              f"recall per group ({recalls})  {time.time() - tic:.0f} s")
    print(f"RESULT logistic_balanced_acc {results['logistic']:.4f}")
    print(f"RESULT cnn_balanced_acc {results['cnn']:.4f}")


if __name__ == "__main__":
    main()
