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
  clipped, after shrinking (see ``course_utils.data.images``, the reader the
  face cache uses too).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from course_utils.data.crops import square_crop_box
from course_utils.data.images import ImageTooLarge, check_pixels, decode_rgb, resize_square
from course_utils.tensors import to_model_range

MIN_SIDE = 8
DEFAULT_MAX_SIDE = 2048


def load_photo(source, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """Open a photo from a path, bytes, file-like object, PIL image or uint8 array.

    Returns an RGB PIL image, rotated upright by its EXIF orientation, with the
    longest side at most ``max_side``. Raises ``ValueError`` saying what was
    wrong for anything that is not a readable image. Decoding is done by
    ``course_utils.data.images.decode_rgb``, the reader the face cache uses.
    """
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < MIN_SIDE:
        raise ValueError(f"max_side must be a whole number of pixels >= {MIN_SIDE}, got {max_side!r}")
    image, origin = _open(source)
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise ValueError(
            f"{origin} is only {width}x{height} pixels; a face photo needs at least "
            f"{MIN_SIDE} px on each side"
        )
    try:
        check_pixels(image, origin)
        if image is source:
            image.load()  # a caller's image is never drafted (draft changes it in place)
        decoded = decode_rgb(image, max_side=int(max_side), origin=origin)
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        # Truncated or corrupt data surfaces only when pixels are decoded.
        raise ValueError(f"could not decode {origin}: {error}") from error
    if decoded.grey_filled:
        warnings.warn(f"{origin} looks cut short: its last rows are the grey fill of missing JPEG data",
                      UserWarning, stacklevel=2)
    result = decoded.image
    if result is source:
        result = result.copy()  # callers may edit the result; never hand back their own object
    if min(result.size) < MIN_SIDE:
        raise ValueError(
            f"{origin} is {width}x{height} pixels, too long and thin: shrunk to at most {max_side} px "
            f"it would be {result.width}x{result.height}, under {MIN_SIDE} px on a side"
        )
    return result


def crop_face(image, box=None, size: int = 64, margin: float = 0.4) -> np.ndarray:
    """Square crop around a face box (x1, y1, x2, y2), resized to ``size``.

    ``image`` is anything ``load_photo`` accepts. The box is widened by
    ``margin`` (0.4 adds 40% of the box side) and kept inside the image; without
    a box the centre square is used. The square and the resampling are those
    of the training crops (``data.crops.square_crop_box``). Returns uint8 (size, size, 3).
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    photo = load_photo(image)
    region = square_crop_box(box, photo.width, photo.height, margin)
    side = region[2] - region[0]
    if side < size:
        warnings.warn(
            f"the face region is {side:.0f} px wide, smaller than {size} px; upscaling it",
            UserWarning,
            stacklevel=2,
        )
    return resize_square(photo, region, size)


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
    except (Image.DecompressionBombError, ImageTooLarge) as error:
        raise ValueError(
            f"{origin} is too large to decode safely ({error}); shrink the photo first"
        ) from error
    except (OSError, SyntaxError) as error:  # a damaged header fails while opening
        if not isinstance(error, UnidentifiedImageError):
            raise ValueError(f"could not decode {origin}: {error}") from error
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
