"""The course's one image reader: every photo (training crops, the cache, uploads) goes through here.

``decode_rgb`` turns an opened PIL image into an upright RGB image, treating
modes, bit depth, transparency, EXIF orientation and size limits the same way
for every caller:

* Photo files are read by ``read_photo_file``: regular files only (a FIFO or
  a device would block or never end), at most ``MAX_PHOTO_BYTES``, and opened
  by Pillow only as one of ``PHOTO_FORMATS`` (never EPS, PS or PDF, whose
  decoders start Ghostscript in a subprocess).
* Images above ``pixel_limit()`` pixels are refused with ``ImageTooLarge`` (a
  ``ValueError``) before any pixel is decoded, whatever their bit depth.
* The image is shrunk *before* it is converted: JPEG draft mode decodes at
  1/2..1/8 scale, 16/32-bit and float images are block-averaged strip by strip
  in numpy, and 8-bit images above ``BIG_IMAGE_PIXELS`` are converted and
  reduced strip by strip, so memory follows the output size, not a converted
  full-size copy of the input (a 13000² RGBA PNG costs its decode, 0.7 GB).
* 16-bit and float greyscale is scaled into 0..255, not clipped.
* Transparent pixels are composited on white (``BACKGROUND``).
* A JPEG whose bottom rows are libjpeg's exact grey fill (scan data cut, end
  marker present) is reported in ``Decoded.grey_filled``.
"""
from __future__ import annotations

import math
import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

BACKGROUND = (255, 255, 255)
RESAMPLE = Image.Resampling.BILINEAR  # crops and uploads share it (square_crop_box + resize_square)
REDUCING_GAP = 2.0
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_STRIP_VALUES = 1 << 22  # pixels per strip when reducing big images (~32 MB as float64)
BIG_IMAGE_PIXELS = 1 << 24  # above 16 MP, 8-bit images are converted and reduced strip by strip
# The formats the course reads. Unlisted, Pillow would try all its plugins: EPS runs Ghostscript.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG's opener also reads phones' MPO files
MAX_PHOTO_BYTES = 64 << 20  # one photo file read into memory (a 50 MP phone JPEG is ~25 MB)
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


class ImageTooLarge(ValueError):
    """The image has more pixels (or its file more bytes) than the course decodes."""


class NotARegularFile(ValueError):
    """The path is a FIFO, device, folder or (when links are not followed) a link: nothing to read a photo from."""


def read_photo_file(path, follow_links: bool = True) -> bytes:
    """The bytes of the photo file at ``path``, read without ever blocking.

    Only a regular file is opened: anything else raises ``NotARegularFile``
    before it is opened (a FIFO would wait for a writer forever, ``/dev/zero``
    never ends). A file above ``MAX_PHOTO_BYTES`` raises ``ImageTooLarge``.
    ``follow_links=False`` also refuses a link. A missing file raises
    ``FileNotFoundError``.
    """
    _require_regular_file(os.stat(path, follow_symlinks=follow_links), path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags), "rb") as handle:
        _require_regular_file(os.fstat(handle.fileno()), path)  # swapped for something else since the stat
        data = handle.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise ImageTooLarge(f"'{path}' is larger than the {MAX_PHOTO_BYTES >> 20} MB a photo may be")
    return data


def _require_regular_file(info: os.stat_result, path) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a directory, not an image file", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise NotARegularFile(f"'{path}' is not a regular file (a FIFO, device or link); no photo is read from it")
    if info.st_size > MAX_PHOTO_BYTES:
        raise ImageTooLarge(f"'{path}' is {info.st_size:,} bytes, more than the {MAX_PHOTO_BYTES >> 20} MB "
                            "a photo may be")


def pixel_limit() -> int:
    """Largest pixel count decoded: Pillow's decompression-bomb error threshold (read at call time)."""
    return 2 * int(Image.MAX_IMAGE_PIXELS or 89_478_485)


@dataclass
class Decoded:
    """An RGB image and how it relates to the file it came from."""

    image: Image.Image
    scale: float            # decoded pixels per original pixel (before the EXIF transpose)
    original_size: tuple    # (width, height) in the file
    original_mode: str
    grey_filled: bool = False
    orientation: int = 1     # EXIF orientation; already applied when decoded with upright=True


def check_pixels(image: Image.Image, origin: str = "the image") -> None:
    """Raise ``ImageTooLarge`` when ``image`` has more pixels than ``pixel_limit()``."""
    width, height = image.size
    if width * height > pixel_limit():
        raise ImageTooLarge(f"{origin} is too large to decode safely: {width}x{height} = {width * height:,} "
                            f"pixels, more than the {pixel_limit():,} this course decodes; shrink it first")


def decode_rgb(image: Image.Image, shrink: float = 1.0, max_side: int | None = None,
               origin: str = "the image", upright: bool = True) -> Decoded:
    """Decode ``image`` (opened, usually not loaded yet) -> ``Decoded`` with an RGB image.

    ``shrink`` is how much smaller than the original the caller can accept
    (e.g. 8 allows decoding at 1/8 scale); ``max_side`` additionally makes the
    longest side at most that many pixels. OSError/SyntaxError from broken
    data propagate (callers turn them into their own error or outcome).
    """
    check_pixels(image, origin)
    original_size, original_mode = image.size, image.mode
    if max_side is not None:
        shrink = max(shrink, max(original_size) / max_side)
    orientation = _exif_orientation(image)
    with warnings.catch_warnings():
        # The pixel count was checked above; Pillow's warning adds nothing.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        is_jpeg = image.format in ("JPEG", "MPO")
        if is_jpeg and shrink >= 2 and image.tile:
            wanted = (max(1, math.ceil(original_size[0] / shrink)), max(1, math.ceil(original_size[1] / shrink)))
            image.draft("RGB" if original_mode == "RGB" else None, wanted)
        image.load()  # raises on truncated data instead of returning grey padding
        grey_filled = is_jpeg and _grey_filled(image)
        factor = int(shrink * image.width / original_size[0])  # integer reduction still allowed
        if image.mode.startswith("I") or image.mode == "F":
            image = _high_depth_to_l(image, max(factor, 1))
        elif factor >= 2 and image.width * image.height > BIG_IMAGE_PIXELS:
            image = _reduce_in_strips(image, factor)  # e.g. a 13000² RGBA PNG: no full-size converted copy
        else:  # 8-bit: resize(reducing_gap=...) below reduces in the native mode already
            image = _to_working_mode(image)
        if max_side is not None and max(image.size) > max_side:
            image = image.copy()
            image.thumbnail((max_side, max_side), RESAMPLE, reducing_gap=REDUCING_GAP)
        scale = image.width / original_size[0]
        image = _flatten_alpha(image)
        # Rotating after shrinking avoids copying a full-size camera image.
        if upright and orientation in _EXIF_TRANSPOSE:
            image = make_upright(image, orientation)
            # transpose() copies info, EXIF included: without this, the next reader rotates it again.
            image.info = {}
    return Decoded(image, scale, original_size, original_mode, grey_filled, orientation)


def make_upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1..8) to a PIL image."""
    return image.transpose(_EXIF_TRANSPOSE[orientation]) if orientation in _EXIF_TRANSPOSE else image


def resize_square(image: Image.Image, region, size: int) -> np.ndarray:
    """Resample the square ``region`` (left, top, right, bottom) of ``image`` -> uint8 (size, size, 3)."""
    face = image.resize((size, size), RESAMPLE, box=tuple(region), reducing_gap=REDUCING_GAP)
    return np.asarray(face, dtype=np.uint8).copy()


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright); a broken EXIF block is not worth failing for."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception as error:  # malformed EXIF raises a variety of types
        warnings.warn(f"ignoring unreadable EXIF orientation: {error}", UserWarning, stacklevel=4)
        return 1


def _grey_filled(image: Image.Image) -> bool:
    """True when the bottom rows are libjpeg's exact mid-grey fill for missing scan data."""
    if image.height < 16 or image.mode not in ("RGB", "L"):
        return False
    rows = np.asarray(image.crop((0, image.height - 8, image.width, image.height)))
    return bool((rows == 128).all())


def _to_working_mode(image: Image.Image) -> Image.Image:
    """Any 8-bit mode -> L, RGB or RGBA (alpha kept for compositing after resizing)."""
    if image.mode in ("L", "RGB", "RGBA") and "transparency" not in image.info:
        return image
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode == "1":
        return image.convert("L")
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise ValueError(f"cannot convert image mode {image.mode} to RGB: {error}") from error


def _high_depth_to_l(image: Image.Image, factor: int) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit L, block-averaged by ``factor`` strip by strip.

    ``I;16*`` is known to be 16-bit and divided by 257. For ``I`` and ``F`` the
    range is read from the (reduced) data: floats within [0, 1] are scaled by
    255, values within 0..255 kept, within 0..65535 treated as 16-bit,
    anything else stretched min..max. Edge pixels that do not fill a whole
    block are dropped (less than ``factor`` pixels).
    """
    width, height = image.size
    factor = max(1, min(factor, width, height))
    out_w, out_h = width // factor, height // factor
    rows_per_strip = max(1, _STRIP_VALUES // max(width * factor, 1)) * factor
    reduced = np.empty((out_h, out_w), np.float64)
    for top in range(0, out_h * factor, rows_per_strip):
        bottom = min(top + rows_per_strip, out_h * factor)
        strip = np.asarray(image.crop((0, top, out_w * factor, bottom))).astype(np.float64)
        strip = np.nan_to_num(strip, nan=0.0, posinf=0.0, neginf=0.0)
        blocks = strip.reshape((bottom - top) // factor, factor, out_w, factor)
        reduced[top // factor:bottom // factor] = blocks.mean(axis=(1, 3))
    low, high = (float(reduced.min()), float(reduced.max())) if reduced.size else (0.0, 0.0)
    if image.mode.startswith("I;16"):
        scaled = reduced / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = reduced * 255.0
    elif low >= 0 and high <= 255:
        scaled = reduced
    elif low >= 0 and high <= 65535:
        scaled = reduced / 257.0
    else:
        scaled = (reduced - low) / max(high - low, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def _reduce_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """An 8-bit image in its working mode (``_to_working_mode``) reduced ``factor`` times, strip by strip.

    The same pixels as ``_to_working_mode(image).reduce(factor)``; only a strip
    at a time is converted (and premultiplied, for alpha).
    """
    width, height = image.size
    rows_per_strip = max(1, _STRIP_VALUES // max(width * factor, 1)) * factor
    strips = [_to_working_mode(image.crop((0, top, width, min(top + rows_per_strip, height)))).reduce(factor)
              for top in range(0, height, rows_per_strip)]
    reduced = Image.new(strips[0].mode, (strips[0].width, sum(strip.height for strip in strips)))
    top = 0
    for strip in strips:
        reduced.paste(strip, (0, top))
        top += strip.height
    return reduced


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite transparency on ``BACKGROUND`` -> RGB."""
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image
