"""Square face crops from photos: fast JPEG decoding and a parallel, ordered pipeline.

The crop is a square around the face box: its side is ``(1 + margin)`` times
the longer box side, it is shifted (and if needed shrunk) to stay inside the
photo, and it is resized to ``image_size``. JPEG *draft mode* lets libjpeg
decode at 1/2, 1/4 or 1/8 scale directly, which is most of the speed-up when
the photo is far bigger than the crop we need.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

DEFAULT_MARGIN = 0.4
MIN_PHOTO_SIDE = 16  # smaller photos are placeholders (IMDB-WIKI has 1x1 ones)

# Outcomes of loading one photo, in funnel order.
BAD_BOX = "invalid face box"
MISSING = "missing file"
UNREADABLE = "unreadable/truncated"
PLACEHOLDER = "placeholder (too small)"
GRAYSCALE = "converted grayscale"
CMYK = "converted CMYK"
OK = "ok"
REJECTIONS = (BAD_BOX, MISSING, UNREADABLE, PLACEHOLDER)
CONVERSIONS = (GRAYSCALE, CMYK)


def square_crop_box(face_box, width: int, height: int, margin: float = DEFAULT_MARGIN) -> tuple:
    """Square (x1, y1, x2, y2) around ``face_box``, enlarged by ``margin`` and kept inside the photo."""
    x1, y1, x2, y2 = (float(v) for v in face_box)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"face box {face_box} has no area")
    side = min(max(x2 - x1, y2 - y1) * (1.0 + margin), float(width), float(height))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - side / 2, 0.0), width - side)
    top = min(max(cy - side / 2, 0.0), height - side)
    return (left, top, left + side, top + side)


def crop_face_image(image: Image.Image, face_box, image_size: int = 64,
                    margin: float = DEFAULT_MARGIN, box_scale: float = 1.0) -> np.ndarray:
    """Crop and resize an RGB PIL image -> uint8 (image_size, image_size, 3).

    ``box_scale`` maps original-photo coordinates onto ``image`` when it was
    decoded at reduced size (draft mode).
    """
    scaled_box = [v * box_scale for v in face_box]
    crop = square_crop_box(scaled_box, image.width, image.height, margin)
    # resize(box=...) crops with sub-pixel precision and resamples in one pass.
    face = image.resize((image_size, image_size), Image.BILINEAR, box=crop, reducing_gap=2.0)
    return np.asarray(face, dtype=np.uint8)


def load_face_crop(source, face_box, image_size: int = 64, margin: float = DEFAULT_MARGIN,
                   draft: bool = True) -> tuple[np.ndarray | None, str]:
    """Decode one photo (path or file object) and crop its face -> (uint8 crop or None, outcome).

    ``outcome`` is ``OK``, a conversion (grayscale/CMYK made RGB) or a
    rejection (invalid face box, missing, unreadable/truncated, placeholder).
    Never raises for bad files: IMDB-WIKI holds all of these.
    """
    x1, y1, x2, y2 = (float(v) for v in face_box)
    if not (x2 > x1 and y2 > y1):
        return None, BAD_BOX
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        return None, MISSING
    try:
        with Image.open(source) as img:
            if min(img.size) < MIN_PHOTO_SIDE:
                return None, PLACEHOLDER
            original_mode, original_width = img.mode, img.width
            box_scale = 1.0
            if draft and img.format == "JPEG":
                crop = square_crop_box(face_box, img.width, img.height, margin)
                # Ask for a decode where the crop is still at least image_size wide.
                needed = max(1, int(image_size * img.width / (crop[2] - crop[0])))
                drafted = img.draft("RGB" if original_mode == "RGB" else None, (needed, needed))
                if drafted is not None:  # (mode, (0, 0, width / scale, height / scale))
                    box_scale = drafted[1][2] / original_width
            img.load()  # raises on truncated data instead of returning grey padding
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None, UNREADABLE
    outcome = {"L": GRAYSCALE, "CMYK": CMYK}.get(original_mode, OK)
    return crop_face_image(rgb, face_box, image_size, margin, box_scale), outcome


@dataclass(frozen=True)
class CropJob:
    """Everything one worker needs for a chunk of photos."""

    paths: tuple
    boxes: tuple
    image_size: int
    margin: float


def _crop_chunk(job: CropJob) -> tuple[np.ndarray, list]:
    images = np.zeros((len(job.paths), job.image_size, job.image_size, 3), np.uint8)
    outcomes = []
    for i, (path, box) in enumerate(zip(job.paths, job.boxes)):
        crop, outcome = load_face_crop(path, box, job.image_size, job.margin)
        if crop is not None:
            images[i] = crop
        outcomes.append(outcome)
    return images, outcomes


def default_workers() -> int:
    """Worker processes to use: the CPUs this process may run on (at most 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def crop_faces(paths, boxes, image_size: int = 64, margin: float = DEFAULT_MARGIN,
               workers: int | None = None, chunk_size: int = 64, progress: bool = True,
               ) -> tuple[np.ndarray, list]:
    """Crop many photos in parallel -> (uint8 (N, H, W, 3), list of N outcomes).

    Results come back in input order whatever the worker scheduling, so the
    output is deterministic. Rejected photos leave a zero image; drop them by
    their outcome.
    """
    paths = [str(p) for p in paths]
    boxes = [tuple(float(v) for v in b) for b in boxes]
    if len(paths) != len(boxes):
        raise ValueError(f"{len(paths)} paths but {len(boxes)} face boxes")
    workers = default_workers() if workers is None else int(workers)
    jobs = [CropJob(tuple(paths[i:i + chunk_size]), tuple(boxes[i:i + chunk_size]), image_size, margin)
            for i in range(0, len(paths), chunk_size)]
    bar = tqdm(total=len(paths), desc="Cropping faces", unit="img", disable=not progress)
    images, outcomes = [], []
    try:
        if workers <= 1 or len(jobs) <= 1:
            results = map(_crop_chunk, jobs)
            for chunk_images, chunk_outcomes in results:
                images.append(chunk_images)
                outcomes.extend(chunk_outcomes)
                bar.update(len(chunk_outcomes))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                # map() yields in submission order: deterministic regardless of scheduling.
                for chunk_images, chunk_outcomes in pool.map(_crop_chunk, jobs):
                    images.append(chunk_images)
                    outcomes.extend(chunk_outcomes)
                    bar.update(len(chunk_outcomes))
    finally:
        bar.close()
    if not images:
        return np.zeros((0, image_size, image_size, 3), np.uint8), []
    return np.concatenate(images), outcomes


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """Encode an image as JPEG bytes (the mini-wiki builder and its ground truth share this)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
