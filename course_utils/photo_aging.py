"""A whole photograph aged: find the face, age it, and blend the age change back into the full photo."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .age_change import EditSettings
from .aging import REFINE_STEPS, AgingResult, LatentCache, age_face
from .data.crops import DEFAULT_MARGIN, square_crop_box
from .photo import CENTER, find_face, load_photo


def edit_photo(photo, box, change, margin: float = DEFAULT_MARGIN, feather: float = 0.15) -> np.ndarray:
    """Apply a predicted age change to a full-resolution photo -> uint8 (H, W, 3).

    ``photo``: anything ``photo.load_photo`` accepts (boxes refer to the photo
    as it returns it). ``box``: the face box (x1, y1, x2, y2) the face was
    cropped with (e.g. ``FaceCrop.box``) or "center"; the change lands on the
    same square region (``data.crops.square_crop_box`` with ``margin``).
    ``change``: (h, w, 3) in pixel levels, e.g. ``AgingResult.change``; it is
    upsampled bilinearly onto the region and blended in with a mask that
    fades to zero over the outer ``feather`` fraction of the region on each
    side. Pixels outside the region are returned exactly as they were.
    """
    if not 0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5], got {feather}")
    change = np.asarray(change, dtype=np.float32)
    if change.ndim != 3 or change.shape[2] != 3:
        raise ValueError(f"change must be (h, w, 3), got {change.shape}")
    image = load_photo(photo)
    pixels = np.asarray(image, dtype=np.uint8).copy()
    if isinstance(box, str) and box.lower() in (CENTER, "centre"):
        box = None
    elif box is None:
        raise ValueError('box must be the face box the face was cropped with, or "center"')
    left, top, right, bottom = square_crop_box(box, image.width, image.height, margin)
    side = right - left
    x0, y0 = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
    x1, y1 = min(int(np.ceil(right)), image.width), min(int(np.ceil(bottom)), image.height)
    if x1 <= x0 or y1 <= y0:
        return pixels
    # Pixel centres of the window in the region's [-1, 1] coordinates (grid_sample, align_corners=False).
    gx = 2 * (np.arange(x0, x1, dtype=np.float32) + 0.5 - left) / side - 1
    gy = 2 * (np.arange(y0, y1, dtype=np.float32) + 0.5 - top) / side - 1
    grid = torch.from_numpy(np.stack(np.meshgrid(gx, gy), axis=-1))[None]
    source = torch.from_numpy(change).permute(2, 0, 1)[None]
    upsampled = torch.nn.functional.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                                                align_corners=False)[0].permute(1, 2, 0).numpy()
    mask = _ramp(gx, feather)[None, :] * _ramp(gy, feather)[:, None]
    window = pixels[y0:y1, x0:x1].astype(np.float32)
    blended = np.clip(np.rint(window + mask[..., None] * upsampled), 0, 255).astype(np.uint8)
    pixels[y0:y1, x0:x1] = np.where(mask[..., None] > 0, blended, pixels[y0:y1, x0:x1])
    return pixels


def _ramp(coords: np.ndarray, feather: float) -> np.ndarray:
    """1 inside, smoothly down to 0 at the region's edges (|coord| = 1) over ``2 * feather`` of [-1, 1]."""
    t = np.clip((1 - np.abs(coords)) / (2 * feather), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


@dataclass
class PhotoAgingResult:
    """A whole photo aged: where the face was, the 64 px result, and the full-size edited photo."""

    face: object  # photo.FaceCrop: the photo, face box, square region and crop
    result: AgingResult
    edited_photo: np.ndarray  # uint8 (H, W, 3): the photo with the age change blended in


def age_photo(
    photo,
    target: int | float,
    generator: nn.Module,
    encoder: nn.Module,
    box=None,
    source: int | None = None,
    classifier: nn.Module | None = None,
    refine_steps: int = REFINE_STEPS,
    cache: LatentCache | None = None,
    output: str = "edit",
    margin: float = DEFAULT_MARGIN,
    feather: float = 0.15,
    group_means: torch.Tensor | None = None,
    edit_settings: EditSettings = EditSettings(),
) -> PhotoAgingResult:
    """Detect the face in any photo, age it and blend the age change into the full photo.

    ``box`` as for ``photo.find_face``: None detects the face (``NoFaceFound``
    if there is none), a box is used as given, "center" takes the centre square.
    """
    size = int(getattr(generator, "image_size", 64))
    found = find_face(photo, box=box, size=size, margin=margin)
    result = age_face(found.face, target, generator, encoder, source=source, classifier=classifier,
                      refine_steps=refine_steps, cache=cache, output=output, group_means=group_means,
                      edit_settings=edit_settings)
    edited = edit_photo(found.photo, found.box if found.box is not None else "center", result.change,
                        margin=margin, feather=feather)
    return PhotoAgingResult(found, result, edited)
