"""Square face crops from photos: fast JPEG decoding and a parallel, ordered pipeline.

The crop is a square around the face box: its side is ``(1 + margin)`` times
the longer box side, it is shifted (and if needed shrunk) to stay inside the
photo, and it is resized to ``image_size``. JPEG *draft mode* lets libjpeg
decode at 1/2, 1/4 or 1/8 scale directly, which is most of the speed-up when
the photo is far bigger than the crop we need.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .images import (MAX_PHOTO_BYTES, PHOTO_FORMATS, ImageTooLarge, NotARegularFile, decode_rgb, make_upright,
                     read_photo_file, resize_square)

DEFAULT_MARGIN = 0.4
MIN_PHOTO_SIDE = 16  # smaller photos are placeholders (IMDB-WIKI has 1x1 ones)

# Outcomes of loading one photo, in funnel order.
BAD_BOX = "invalid face box"
NOT_A_DATASET_FILE = "not a file in the folder"  # hostile metadata (outside the folder, FIFO, device): never opened
MISSING = "missing file"
UNREADABLE = "unreadable/truncated"
TOO_LARGE = "too large (pixel limit)"
PLACEHOLDER = "placeholder (too small)"
GRAYSCALE = "converted grayscale"
CMYK = "converted CMYK"
OK = "ok"
REJECTIONS = (BAD_BOX, NOT_A_DATASET_FILE, MISSING, UNREADABLE, TOO_LARGE, PLACEHOLDER)
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
CONVERSIONS = (GRAYSCALE, CMYK)


def parse_face_box(face_box) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) as finite floats with x1 < x2 and y1 < y2, else ValueError."""
    try:
        x1, y1, x2, y2 = (float(v) for v in face_box)
    except (TypeError, ValueError) as error:
        raise ValueError(f"box must be four numbers (x1, y1, x2, y2), got {face_box!r}") from error
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        raise ValueError(f"box must satisfy x1 < x2 and y1 < y2 with finite values, got {face_box!r}")
    return x1, y1, x2, y2


def square_crop_box(face_box, width: int, height: int, margin: float = DEFAULT_MARGIN) -> tuple:
    """Square (x1, y1, x2, y2) around ``face_box``, enlarged by ``margin`` and kept inside the photo.

    ``face_box=None`` gives the centre square. A box that is not finite, has
    no area or lies entirely outside the photo is a ValueError.
    """
    if face_box is None:
        side = float(min(width, height))
        left, top = (width - side) / 2, (height - side) / 2
        return (left, top, left + side, top + side)
    x1, y1, x2, y2 = parse_face_box(face_box)
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise ValueError(f"box {face_box!r} lies outside the {width}x{height} image")
    side = min(max(x2 - x1, y2 - y1) * (1.0 + margin), float(width), float(height))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - side / 2, 0.0), width - side)
    top = min(max(cy - side / 2, 0.0), height - side)
    return (left, top, left + side, top + side)


def crop_face_image(image: Image.Image, face_box, image_size: int = 64,
                    margin: float = DEFAULT_MARGIN, box_scale: float = 1.0) -> np.ndarray:
    """Crop and resize an RGB PIL image -> uint8 (image_size, image_size, 3).

    ``box_scale`` maps original-photo coordinates onto ``image`` when it was
    decoded at reduced size (draft mode or block reduction).
    """
    scaled_box = [v * box_scale for v in face_box]
    crop = square_crop_box(scaled_box, image.width, image.height, margin)
    return resize_square(image, crop, image_size)


def dataset_photo_path(root, full_path: str) -> Path | None:
    """The file ``full_path`` (a metadata entry) names inside the dataset folder ``root``, or None.

    None for an empty or absolute path, one with ``..``, and one that leaves
    ``root`` through a link: metadata may only point at the dataset's own
    photos. Nothing is opened; whether it is a regular file is checked when it
    is read (``images.read_photo_file``).
    """
    relative = PurePath(str(full_path))
    if not str(full_path) or relative.is_absolute() or relative.anchor or ".." in relative.parts:
        return None
    folder = Path(root).resolve()
    try:
        resolved = (folder / relative).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return None
    return resolved if resolved.is_relative_to(folder) and resolved != folder else None


def load_face_crop(source, face_box, image_size: int = 64, margin: float = DEFAULT_MARGIN,
                   draft: bool = True) -> tuple[np.ndarray | None, str]:
    """Decode one photo (path or file object) and crop its face -> (uint8 crop or None, outcome).

    ``outcome`` is ``OK``, a conversion (grayscale/CMYK made RGB) or a
    rejection (invalid face box, not a regular file, missing, unreadable or
    truncated, too large, placeholder). Never raises for bad files: IMDB-WIKI
    holds all of these, and any decoder error or ``MemoryError`` for one photo
    is its outcome, not the end of a build. A path is read without following
    a link (``dataset_photo_path`` resolves them) and only if it is a regular
    file; only ``images.PHOTO_FORMATS`` are decoded. Decoding goes through
    ``images.decode_rgb``, as uploads do.
    """
    try:
        parse_face_box(face_box)
    except ValueError:
        return None, BAD_BOX
    try:
        if isinstance(source, (str, os.PathLike)):
            data = read_photo_file(source, follow_links=False)
        else:
            data = source.read(MAX_PHOTO_BYTES + 1)
            if len(data) > MAX_PHOTO_BYTES:
                return None, TOO_LARGE
    except (FileNotFoundError, NotADirectoryError):
        return None, MISSING
    except (NotARegularFile, IsADirectoryError):
        return None, NOT_A_DATASET_FILE
    except ImageTooLarge:
        return None, TOO_LARGE
    except (OSError, ValueError):
        return None, UNREADABLE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as img:
                if min(img.size) < MIN_PHOTO_SIDE:
                    return None, PLACEHOLDER
                try:
                    crop = square_crop_box(face_box, img.width, img.height, margin)
                except ValueError:
                    return None, BAD_BOX
                # Decode small enough that the crop is still at least image_size wide.
                shrink = (crop[2] - crop[0]) / image_size if draft else 1.0
                decoded = decode_rgb(img, shrink=shrink, upright=False)
    except (ImageTooLarge, Image.DecompressionBombError, MemoryError):
        return None, TOO_LARGE
    except Exception:  # any decoder's error (they raise many types) rejects this photo only
        return None, UNREADABLE
    if decoded.grey_filled:  # scan data cut short and padded with grey by libjpeg
        return None, UNREADABLE
    mode = decoded.original_mode
    outcome = CMYK if mode == "CMYK" else GRAYSCALE if mode in _GREY_MODES else OK
    crop = crop_face_image(decoded.image, face_box, image_size, margin, decoded.scale)
    # Face boxes are in file coordinates, so rotate the crop, not the photo.
    return np.asarray(make_upright(Image.fromarray(crop), decoded.orientation)), outcome


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
