"""Read any photo a learner may give and turn it into a square face crop.

Decisions worth knowing:

* Transparent pixels are composited on **white**. The colour hidden under a
  transparent pixel is arbitrary (often black or garbage), so a mean colour
  would depend on data nobody can see; white is predictable and matches how
  cut-out portraits are usually shown.
* Photos with a side shorter than ``MIN_SIDE`` (8 px) are refused with a
  ``ValueError``: there is no face to age in a 3x5 image. Crops smaller than
  the requested size are upscaled with a ``UserWarning``.
* Only the formats in ``data.images.PHOTO_FORMATS`` are opened (an EPS file
  named ``.jpg`` never starts Ghostscript), and a path is read only when it
  is a regular file of at most ``data.images.MAX_PHOTO_BYTES`` (a FIFO or
  ``/dev/zero`` is refused, not waited on).
* Large photos are decoded at reduced scale (JPEG ``draft``) and shrunk to at
  most ``max_side`` pixels, so a 12000x9000 camera image costs a few MB, not
  hundreds. Images above Pillow's decompression-bomb limit
  (``2 * PIL.Image.MAX_IMAGE_PIXELS``) are refused with a ``ValueError``.
* 16-bit and float greyscale images are scaled into 0..255 rather than
  clipped, after shrinking (see ``course_utils.data.images``, the reader the
  face cache uses too).
* Without a ``box``, ``find_face`` *finds* the face with OpenCV's Haar
  cascades (frontal faces first, then faces in profile either way round),
  OpenCV's detector files shipped in this package (``cascades/``): nothing
  is downloaded. Several faces: the largest is used and a ``UserWarning`` says
  so. No face: ``NoFaceFound`` (a ``ValueError``); the centre square is used
  only when asked for (``box="center"`` or ``center=True``).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from course_utils.data.crops import DEFAULT_MARGIN, square_crop_box
from course_utils.data.images import (MAX_PHOTO_BYTES, PHOTO_FORMATS, ImageTooLarge, NotARegularFile, check_pixels,
                                      decode_rgb, read_photo_file, resize_square)

MIN_SIDE = 8
DEFAULT_MAX_SIDE = 2048
CENTER = "center"
DETECT_SIDE = 640  # faces are looked for on a copy at most this big (fast, and plenty for 64 px crops)
MIN_FACE = 24      # smallest face side, in pixels of that copy
_CASCADES = {}     # cascade file name -> loaded cv2.CascadeClassifier


class NoFaceFound(ValueError):
    """The face detector found no face in the photo."""


@dataclass
class FaceCrop:
    """A face found (or placed) in a photo and its square crop.

    ``box`` is the face box (x1, y1, x2, y2) in ``photo``'s pixels (None for
    the centre crop); ``region`` the square around it, widened by the margin,
    that was resized into ``face``. ``faces_found`` counts detected faces
    (0 when the box was given or the centre asked for).
    """

    face: np.ndarray
    photo: Image.Image
    box: tuple | None
    region: tuple
    faces_found: int = 0

    @property
    def detected(self) -> bool:
        return self.faces_found > 0


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


def detect_faces(image, min_neighbors: int = 5) -> list[tuple[float, float, float, float]]:
    """Face boxes (x1, y1, x2, y2) in ``image``'s pixels, largest first; [] when there is none.

    ``image`` is anything ``load_photo`` accepts (boxes refer to the photo as
    ``load_photo`` returns it). OpenCV's frontal-face Haar cascade runs first;
    only if it finds nothing, the profile-face cascade runs on the photo and on
    its mirror image (it knows faces turned one way only). Overlapping boxes
    are merged. Detection runs on a greyscale copy at most ``DETECT_SIDE`` px.
    """
    return _detect_upright(load_photo(image), min_neighbors)


def _detect_upright(photo: Image.Image, min_neighbors: int = 5) -> list[tuple[float, float, float, float]]:
    """``detect_faces`` on a photo ``load_photo`` already decoded: upright, RGB, never decoded again."""
    scale = min(1.0, DETECT_SIDE / max(photo.size))
    small = photo if scale == 1.0 else photo.resize(
        (max(1, round(photo.width * scale)), max(1, round(photo.height * scale))), Image.Resampling.BILINEAR)
    grey = np.asarray(small.convert("L"))
    width = grey.shape[1]
    boxes = _detect(grey, "haarcascade_frontalface_default.xml", min_neighbors)
    if not boxes:
        boxes = _detect(grey, "haarcascade_profileface.xml", min_neighbors)
        mirrored = _detect(np.ascontiguousarray(grey[:, ::-1]), "haarcascade_profileface.xml", min_neighbors)
        boxes += [(width - x2, y1, width - x1, y2) for x1, y1, x2, y2 in mirrored]
    boxes = _merge_overlapping(sorted(boxes, key=_area, reverse=True))
    return [tuple(float(v) / scale for v in box) for box in boxes]


def find_face(image, box=None, size: int = 64, margin: float = DEFAULT_MARGIN,
              center: bool = False) -> FaceCrop:
    """Locate the face in a photo and crop it as the training faces were cropped -> ``FaceCrop``.

    ``image`` is anything ``load_photo`` accepts; it is decoded once, upright. ``box`` (x1, y1, x2, y2)
    is used as given; ``box="center"`` or ``center=True`` takes the centre square; otherwise the face
    is detected (``detect_faces``): with several faces the largest is used and a ``UserWarning`` says
    so; with none, ``NoFaceFound`` is raised. The crop is ``data.crops.square_crop_box`` widened by
    ``margin`` (0.4 adds 40% of the box side) and resampled by ``data.images.resize_square``, exactly
    as the IMDB-WIKI crops were made: ``result.face`` is uint8 (size, size, 3).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    photo = load_photo(image)
    faces_found = 0
    if isinstance(box, str):
        if box.lower() not in (CENTER, "centre"):
            raise ValueError(f"box must be four numbers (x1, y1, x2, y2), 'center' or None, got {box!r}")
        box, center = None, True
    if box is None and not center:
        boxes = _detect_upright(photo)  # the photo decoded above: its EXIF rotation is applied once
        faces_found = len(boxes)
        if not boxes:
            raise NoFaceFound(
                f"no face found in this {photo.width}x{photo.height} photo, so nothing was aged. "
                "Pass the face yourself with box=(x1, y1, x2, y2) in pixels, or ask for the centre "
                "square explicitly with box=\"center\"; a well-lit, "
                "frontal face is found most reliably"
            )
        box = boxes[0]
        if faces_found > 1:
            x1, y1, x2, y2 = box
            warnings.warn(
                f"found {faces_found} faces; using the largest, ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}). "
                "Pass box=(x1, y1, x2, y2) to choose another",
                UserWarning, stacklevel=2,
            )
    region = square_crop_box(box, photo.width, photo.height, margin)
    side = region[2] - region[0]
    if side < size:
        warnings.warn(
            f"the face region is {side:.0f} px wide, smaller than {size} px; upscaling it",
            UserWarning,
            stacklevel=2,
        )
    face = resize_square(photo, region, size)
    return FaceCrop(face, photo, None if box is None else tuple(float(v) for v in box), tuple(region), faces_found)


def _detect(grey: np.ndarray, cascade_name: str, min_neighbors: int) -> list[tuple]:
    cascade = _cascade(cascade_name)
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=min_neighbors,
                                     minSize=(MIN_FACE, MIN_FACE))
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]


# OpenCV's Haar cascades, shipped in the package (their licence: cascades/LICENSE.txt): found by path,
# not through cv2.data, which OpenCV 5's wheels leave empty and conda-forge's build may not have.
CASCADE_FOLDER = Path(__file__).resolve().with_name("cascades")


def _cascade(name: str):
    if name not in _CASCADES:
        import cv2  # imported here: `import course_utils` stays fast and works without OpenCV

        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it to opencv-contrib); "
                "install opencv-python-headless<5, or opencv-contrib-python-headless>=5"
            )
        cascade = cv2.CascadeClassifier(str(CASCADE_FOLDER / name))
        if cascade.empty():
            raise ImportError(f"could not load the Haar cascade {CASCADE_FOLDER / name}")
        _CASCADES[name] = cascade
    return _CASCADES[name]


def _area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _merge_overlapping(boxes: list, threshold: float = 0.3) -> list:
    """Drop boxes overlapping a larger kept one by more than ``threshold`` of the smaller's area."""
    kept = []
    for box in boxes:
        if all(_overlap(box, other) <= threshold * _area(box) for other in kept):
            kept.append(box)
    return kept


def _overlap(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


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
        data, origin = source.read(MAX_PHOTO_BYTES + 1), "the given file object"
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("the file object returned text; open the photo in binary mode ('rb')")
        if len(data) > MAX_PHOTO_BYTES:
            raise ValueError(f"{origin} holds more than the {MAX_PHOTO_BYTES >> 20} MB a photo may be")
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
            return Image.open(io.BytesIO(data), formats=PHOTO_FORMATS), origin
    except (Image.DecompressionBombError, ImageTooLarge) as error:
        raise ValueError(
            f"{origin} is too large to decode safely ({error}); shrink the photo first"
        ) from error
    except (OSError, SyntaxError) as error:  # a damaged header fails while opening
        if not isinstance(error, UnidentifiedImageError):
            raise ValueError(f"could not decode {origin}: {error}") from error
        preview = bytes(data[:16])
        raise ValueError(
            f"{origin} is not an image format the course reads ({', '.join(PHOTO_FORMATS)}; it starts "
            f"with {preview!r})"
        ) from error


def _read_path(path: Path) -> bytes:
    try:
        return read_photo_file(path)
    except FileNotFoundError:
        raise ValueError(f"no file at '{path}'") from None
    except IsADirectoryError:
        raise ValueError(f"'{path}' is a directory, not an image file") from None
    except (NotARegularFile, ImageTooLarge) as error:
        raise ValueError(str(error)) from None
    except OSError as error:
        raise ValueError(f"could not read '{path}': {error.strerror or error}") from None


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(
            f"expected a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}"
        )
    return Image.fromarray(np.ascontiguousarray(array))
