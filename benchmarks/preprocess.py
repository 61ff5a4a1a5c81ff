"""Benchmark: our crop-and-cache pipeline against the naive one, on the same mini-wiki JPEGs.

naive: one photo at a time, full-size decode (PIL open, convert, crop, resize).
ours:  JPEG draft-mode decode at reduced scale + a process pool (crop_faces).

Prints images/s for each and, last, ``RESULT preprocess_speedup <ratio>``.
Usage: python benchmarks/preprocess.py [--limit 2000] [--workers N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from course_utils.data import download_dataset, filter_faces, read_imdb_wiki_metadata, square_crop_box
from course_utils.data.crops import DEFAULT_MARGIN, crop_faces, default_workers


def naive_crops(paths, boxes, image_size=64, margin=DEFAULT_MARGIN) -> np.ndarray:
    """The straightforward way: full decode, crop, resize, one image at a time."""
    out = np.zeros((len(paths), image_size, image_size, 3), np.uint8)
    for i, (path, box) in enumerate(zip(paths, boxes)):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
            crop = [round(v) for v in square_crop_box(box, rgb.width, rgb.height, margin)]
        except (OSError, ValueError):  # mini-wiki's few defective photos (unreadable, 1x1) stay black
            continue
        out[i] = np.asarray(rgb.crop(crop).resize((image_size, image_size), Image.BICUBIC))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="number of photos to crop")
    parser.add_argument("--workers", type=int, default=None, help="worker processes for our pipeline")
    args = parser.parse_args()

    root = download_dataset("mini-wiki", progress=False)
    table, _ = filter_faces(read_imdb_wiki_metadata(root / "wiki.mat"))
    table = table[[(root / p).exists() for p in table["full_path"]]].iloc[: args.limit]
    paths = [str(root / p) for p in table["full_path"]]
    boxes = table[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy()
    for path in paths:  # warm the page cache so both runs read from memory
        with open(path, "rb") as handle:
            handle.read()
    workers = args.workers or default_workers()
    sizes = [Image.open(p).size[0] for p in paths[:200]]
    print(f"{len(paths)} photos, median {int(np.median(sizes))} px wide, workers={workers}")

    started = time.perf_counter()
    naive = naive_crops(paths, boxes)
    naive_rate = len(paths) / (time.perf_counter() - started)
    print(f"naive (full decode, 1 process): {naive_rate:8.1f} images/s")

    started = time.perf_counter()
    ours, outcomes = crop_faces(paths, boxes, workers=workers, progress=False)
    ours_rate = len(paths) / (time.perf_counter() - started)
    print(f"ours  (draft mode, {workers} workers):  {ours_rate:8.1f} images/s")

    ok = np.array([o == "ok" for o in outcomes])
    difference = np.abs(naive[ok].astype(int) - ours[ok].astype(int)).mean()
    print(f"mean absolute pixel difference between the two: {difference:.2f} (of 255)")
    print(f"RESULT preprocess_speedup {ours_rate / naive_rate:.2f}")


if __name__ == "__main__":
    main()
