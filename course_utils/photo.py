"""Read any photo a learner may give and turn it into a square face crop.

Decisions worth knowing:

* Transparent pixels are composited on **white**. The colour hidden under a
  transparent pixel is arbitrary (often black or garbage), so a mean colour
  would depend on data nobody can see; white is predictable and matches how
  cut-out portraits are usually shown.
* Photos with a side shorter than ``MIN_SIDE`` (8 px) are refused with a
  ``ValueError``: there is no face to age in a 3x5 image. Crops smaller than
  the requested size are upscaled with a ``UserWarning``.
* Large photos are decoded at reduced scale (JPEG ``draft``) and shrunk to at
  most ``max_side`` pixels, so a 12000x9000 camera image costs a few MB, not
  hundreds. Images above Pillow's decompression-bomb limit
  (``2 * PIL.Image.MAX_IMAGE_PIXELS``) are refused with a ``ValueError``.
* 16-bit and float greyscale images are scaled into 0..255 rather than
  clipped (see ``_high_depth_to_l``).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from course_utils.tensors import to_model_range

MIN_SIDE = 8
DEFAULT_MAX_SIDE = 2048
_BACKGROUND = (255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
# EXIF orientation -> the transpose that makes the photo upright (same table as ImageOps.exif_transpose).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def load_photo(source, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """Open a photo from a path, bytes, file-like object, PIL image or uint8 array.

    Returns an RGB PIL image, rotated upright by its EXIF orientation, with the
    longest side at most ``max_side``. Raises ``ValueError`` saying what was
    wrong for anything that is not a readable image.
    """
    image, origin = _open(source)
    opened_here = image is not source  # never draft or resize a caller's own image in place
    try:
        with warnings.catch_warnings():
            # We shrink right away, so big-but-allowed images are not a threat.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if opened_here and image.format == "JPEG":
                image.draft(None, (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
            image.load()
            orientation = _exif_orientation(image)
            image = _to_working_mode(image)
            if max(image.size) > max_side:
                if image is source:
                    image = image.copy()
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
            image = _flatten_alpha(image)
            # Rotating after shrinking avoids copying a full-size camera image.
            if orientation in _EXIF_TRANSPOSE:
                image = image.transpose(_EXIF_TRANSPOSE[orientation])
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        # Truncated or corrupt data surfaces only when pixels are decoded.
        raise ValueError(f"could not decode {origin}: {error}") from error
    if image is source:
        image = image.copy()  # callers may edit the result; never hand back their own object
    if min(image.size) < MIN_SIDE:
        width, height = image.size
        raise ValueError(
            f"{origin} is only {width}x{height} pixels; a face photo needs at least "
            f"{MIN_SIDE} px on each side"
        )
    return image


def crop_face(image, box=None, size: int = 64, margin: float = 0.4) -> np.ndarray:
    """Square crop around a face box (x1, y1, x2, y2), resized to ``size``.

    ``image`` is anything ``load_photo`` accepts. The box is widened by
    ``margin`` (0.4 adds 40% of the box side) and kept inside the image; without
    a box the centre square is used. Returns uint8 (size, size, 3).
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    photo = load_photo(image)
    left, top, side = _square_region(photo.size, box, margin)
    if side < size:
        warnings.warn(
            f"the face region is {side:.0f} px wide, smaller than {size} px; upscaling it",
            UserWarning,
            stacklevel=2,
        )
    region = (left, top, left + side, top + side)
    # reducing_gap lets Pillow use fast integer reduce() before the LANCZOS pass.
    crop = photo.resize((size, size), Image.Resampling.LANCZOS, box=region, reducing_gap=3.0)
    return np.asarray(crop, dtype=np.uint8).copy()


def photo_to_tensor(source, box=None, size: int = 64, margin: float = 0.4) -> torch.Tensor:
    """Photo -> face crop -> float tensor (1, 3, size, size) in [-1, 1] for the models."""
    return to_model_range(crop_face(source, box=box, size=size, margin=margin))


def _open(source) -> tuple[Image.Image, str]:
    """Turn any supported source into an (unloaded) PIL image and a name for messages."""
    if isinstance(source, Image.Image):
        return source, "the given PIL image"
    if isinstance(source, np.ndarray):
        return _from_array(source), "the given array"
    if isinstance(source, (str, os.PathLike)):
        data, origin = _read_path(Path(source)), f"'{source}'"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, origin = bytes(source), "the given bytes"
    elif hasattr(source, "read"):
        data, origin = source.read(), "the given file object"
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("the file object returned text; open the photo in binary mode ('rb')")
    else:
        raise ValueError(
            "expected a photo as a path, bytes, a binary file object, a PIL image or a "
            f"uint8 array, got {type(source).__name__}: {source!r:.60}"
        )
    if len(data) == 0:
        raise ValueError(f"{origin} is empty (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data)), origin
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{origin} is too large to decode safely ({error}); shrink the photo first"
        ) from error
    except UnidentifiedImageError as error:
        preview = bytes(data[:16])
        raise ValueError(
            f"{origin} is not an image format Pillow can read (starts with {preview!r})"
        ) from error


def _read_path(path: Path) -> bytes:
    if not path.exists():
        raise ValueError(f"no file at '{path}'")
    if path.is_dir():
        raise ValueError(f"'{path}' is a directory, not an image file")
    return path.read_bytes()


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(
            f"expected a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright); a broken EXIF block is not worth failing for."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception as error:  # malformed EXIF raises a variety of types
        warnings.warn(f"ignoring unreadable EXIF orientation: {error}", UserWarning, stacklevel=3)
        return 1


def _to_working_mode(image: Image.Image) -> Image.Image:
    """Any mode -> L, RGB or RGBA (alpha kept for compositing after resizing)."""
    if image.mode.startswith("I") or image.mode == "F":
        return _high_depth_to_l(image)
    if image.mode in ("L", "RGB") and "transparency" not in image.info:
        return image
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode == "1":
        return image.convert("L")
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise ValueError(f"cannot convert image mode {image.mode} to RGB: {error}") from error


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit, scaled instead of clipped.

    ``I;16*`` is known to be 16-bit and divided by 257. For ``I`` and ``F`` the
    range is read from the data: floats within [0, 1] are scaled by 255, values
    within 0..255 kept, within 0..65535 treated as 16-bit, anything else
    stretched min..max.
    """
    values = np.asarray(image).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    elif low >= 0 and high <= 65535:
        scaled = values / 257.0
    else:
        scaled = (values - low) / max(high - low, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _square_region(image_size, box, margin: float) -> tuple[float, float, float]:
    """(left, top, side) of a square inside the image, around ``box`` if given."""
    width, height = image_size
    if box is None:
        side = min(width, height)
        return (width - side) / 2, (height - side) / 2, side
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError) as error:
        raise ValueError(f"box must be four numbers (x1, y1, x2, y2), got {box!r}") from error
    if not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
        raise ValueError(f"box must satisfy x1 < x2 and y1 < y2 with finite values, got {box!r}")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise ValueError(f"box {box!r} lies outside the {width}x{height} image")
    side = min(max(x2 - x1, y2 - y1) * (1 + margin), width, height)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(centre_x - side / 2, 0), width - side)
    top = min(max(centre_y - side / 2, 0), height - side)
    return left, top, side
