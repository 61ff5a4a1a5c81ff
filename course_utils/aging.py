"""Age a face end to end: encode -> refine the latent -> render at a target age.

The encoder gives a quick first guess of a face's latent z; a few gradient
steps on z (``refine_latent``) then pull the generator's reconstruction closer
to the photo, as Age-cGAN does. Changing the target age only changes the
condition, so with z cached each new age costs one generator pass.

Two outputs come out of ``age_face``:

* ``redraw``: G(z, target), the face drawn again by the generator;
* ``edit`` (the default): the photo plus the generator's *age change*
  G(z, target) - G(z, source), clipped. Everything the generator cannot
  reproduce (identity details, background, lighting) stays as in the photo.
  With the training faces' mean face per age group (``group_means``) the
  change is cleaned first (:class:`EditSettings`): kept to where ages
  differ at all, blended with the population's average change, and
  aligned to the photo's own edges by a guided filter.
  Chapter 5 measures both outputs against ground truth.

``edit_photo`` applies that change to the full-resolution photo, and
``age_photo`` runs detect -> crop -> age -> edit on any photo.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_utils.data.crops import DEFAULT_MARGIN, square_crop_box
from course_utils.photo import CENTER, find_face, load_photo
from course_utils.tensors import one_hot, soft_condition, to_model_range, to_uint8
from course_utils.training import eval_mode, evaluating, frozen_parameters, module_device


OUTPUTS = ("edit", "redraw")


@dataclass(frozen=True)
class EditSettings:
    """How the generator's age change is cleaned before it is added to the photo.

    The raw change G(z, target) - G(z, source) carries the generator's pixel
    noise, and changes pixels (background, clothes) that age does not touch. So:

    * ``smoothing``: a box filter this many pixels wide removes the pixel noise;
    * ``mask_scale``: where the population's average change (from ``group_means``)
      is below this (in [-1, 1] units), the change fades out; at or above it, it
      is kept whole;
    * ``model_weight``: the change is ``model_weight`` x the model's change +
      (1 - model_weight) x the population's average change. A per-person
      estimate shrunk towards the average: less variance for a little bias.
    * ``guide_radius``, ``guide_eps``: a guided filter (He, Sun & Tang, ECCV
      2010) with the photo as its guide. In each (2r+1)-pixel window the change
      becomes a linear function of the photo's colours, so it follows the
      person's own edges (their hairline, not the average one). 0 turns it off.

    Mask and blend need ``group_means``; the guided filter needs the photo
    (``clean_change(..., guide=photo)``). Each step runs when what it needs is given.
    The defaults were chosen by ``scripts/tune_edit.py`` on held-out faces that
    chapter 5 does not report; ``EditSettings.raw()`` is the plain change.
    """

    smoothing: int = 1
    mask_scale: float = 0.05
    model_weight: float = 0.4
    guide_radius: int = 4
    guide_eps: float = 1e-4

    def __post_init__(self):
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise ValueError(f"smoothing must be an odd width >= 1, got {self.smoothing}")
        if self.mask_scale < 0:
            raise ValueError(f"mask_scale must be >= 0, got {self.mask_scale}")
        if not 0 <= self.model_weight <= 1:
            raise ValueError(f"model_weight must be in [0, 1], got {self.model_weight}")
        if self.guide_radius < 0 or self.guide_eps <= 0:
            raise ValueError(f"guide_radius must be >= 0 and guide_eps > 0, got {self.guide_radius}, {self.guide_eps}")

    @classmethod
    def raw(cls) -> "EditSettings":
        """No cleaning: the change is exactly G(z, target) - G(z, source)."""
        return cls(smoothing=1, mask_scale=0.0, model_weight=1.0, guide_radius=0)


def population_change(group_means: torch.Tensor, source_condition: torch.Tensor,
                      target_condition: torch.Tensor) -> torch.Tensor:
    """The average face change between the conditions: (target - source) weights of the group means.

    ``group_means``: (K, 3, H, W) mean training face per group, in [-1, 1]; conditions (N, K),
    one-hot or soft. Returns (N, 3, H, W).
    """
    weights = (target_condition - source_condition).to(group_means)
    return torch.einsum("nk,kchw->nchw", weights, group_means)


def clean_change(raw: torch.Tensor, source_condition: torch.Tensor, target_condition: torch.Tensor,
                 group_means: torch.Tensor | None = None, settings: EditSettings = EditSettings(),
                 guide: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth, mask, blend and edge-align a raw change (N, 3, H, W) as :class:`EditSettings` describes.

    The average change comes from the mean face of each group (``group_means``) and the two conditions.
    ``guide``: the photos (N, 3, H, W) in [-1, 1] the change will be added to.
    """
    average = None
    if group_means is not None:
        average = population_change(group_means.float().cpu(), source_condition.float().cpu(),
                                    target_condition.float().cpu())
    return clean_change_with_average(raw, average, settings, guide)


def clean_change_with_average(raw: torch.Tensor, average: torch.Tensor | None,
                              settings: EditSettings = EditSettings(),
                              guide: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`clean_change` given the population's average change (N, 3, H, W) for the same move
    directly (chapter 6: mean face at the target age − mean face at the source age); None skips mask
    and blend."""
    change = raw.float().cpu()
    if settings.smoothing > 1:
        change = torch.nn.functional.avg_pool2d(change, settings.smoothing, stride=1,
                                                padding=settings.smoothing // 2, count_include_pad=False)
    if average is not None:
        average = average.float().cpu().expand_as(change)
        if settings.mask_scale > 0:
            strength = average.abs().mean(dim=1, keepdim=True)
            change = change * (strength / settings.mask_scale).clamp(max=1.0)
        change = settings.model_weight * change + (1 - settings.model_weight) * average
    if guide is not None and settings.guide_radius > 0:
        change = guided_filter(guide.float().cpu(), change, settings.guide_radius, settings.guide_eps)
    return change


def guided_filter(guide: torch.Tensor, signal: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """``signal`` (N, C, H, W) smoothed so that it follows the edges of ``guide`` (N, 3, H, W).

    The colour guided filter of He, Sun & Tang (ECCV 2010): in every window of
    (2 radius + 1)^2 pixels, fit signal ~ a . guide + b by ridge regression
    (``eps`` is the ridge), then average the fitted a and b over the windows
    covering each pixel. Where the guide is flat, the signal is averaged;
    across a guide edge, it may jump.
    """
    def box(x):
        return torch.nn.functional.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    n, _, height, width = guide.shape
    guide_mean, signal_mean = box(guide), box(signal)
    mean_last = guide_mean.permute(0, 2, 3, 1)  # (N, H, W, 3)
    products = torch.stack([box(guide[:, i:i + 1] * guide[:, j:j + 1])[:, 0] for i in range(3) for j in range(3)], -1)
    covariance = products.view(n, height, width, 3, 3) - mean_last[..., :, None] * mean_last[..., None, :]
    cross = torch.stack([box(guide[:, i:i + 1] * signal) for i in range(3)], -1)  # (N, C, H, W, 3)
    cross = cross - mean_last[:, None] * signal_mean[..., None]
    slopes = torch.linalg.solve(covariance[:, None] + eps * torch.eye(3), cross[..., None])[..., 0]
    offsets = signal_mean - (slopes * mean_last[:, None]).sum(-1)
    slopes = torch.stack([box(slopes[..., k]) for k in range(3)], -1)
    return (slopes * guide.permute(0, 2, 3, 1)[:, None]).sum(-1) + box(offsets)


def _generate(generator: nn.Module, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """G(z, condition) as float images (N, 3, H, W) on the CPU, in eval mode, without gradients."""
    device = module_device(generator)
    condition = _batched_condition(condition, z.shape[0]).to(device)
    with evaluating(generator):
        return generator(z.to(device), condition).float().cpu()


@dataclass
class AgingResult:
    """One aged face. Images are uint8 (H, W, 3); ``z`` is the latent (z_dim,).

    ``aged`` is the output that was asked for (``output``, "edit" by default);
    ``edit`` and ``redraw`` are both always there.
    """

    original: np.ndarray
    reconstruction: np.ndarray  # G(z, source): how well the latent captures the face
    aged: np.ndarray  # the chosen output: ``edit`` or ``redraw``
    z: torch.Tensor
    source: int
    target: int | float  # a group index or a position between groups
    history: dict[str, list[float]] | None = field(default=None, repr=False)  # None on a cache hit
    redraw: np.ndarray | None = field(default=None, repr=False)  # G(z, target)
    edit: np.ndarray | None = field(default=None, repr=False)  # original + change, clipped
    change: np.ndarray | None = field(default=None, repr=False)  # float32 (H, W, 3), pixel levels
    output: str = "edit"


class LatentCache:
    """A small least-recently-used store of (z, G(z, source) as float) per face.

    Keys come from ``key_for``. Clear it after retraining a model: the key
    knows which model objects were used, not their current weights.
    """

    def __init__(self, max_items: int = 64):
        if max_items < 1:
            raise ValueError(f"max_items must be positive, got {max_items}")
        self.max_items = max_items
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[torch.Tensor, np.ndarray]] = OrderedDict()

    @staticmethod
    def key_for(image: torch.Tensor, source: int, refine_steps: int, *models: nn.Module) -> str:
        """A key from the image's bytes, the source group, the refinement and the models used."""
        digest = hashlib.sha1(image.detach().cpu().contiguous().numpy().tobytes())
        digest.update(repr((tuple(image.shape), source, refine_steps, [id(m) for m in models])).encode())
        return digest.hexdigest()

    def get(self, key: str):
        """The cached value or None; counts hits and misses."""
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: str, value) -> None:
        """Store a value, dropping the least recently used one when full."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (e.g. after the models changed)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def encode(encoder: nn.Module, images) -> torch.Tensor:
    """Latents z (N, z_dim) for images (uint8 (N, H, W, 3) or float (N, 3, H, W) in [-1, 1])."""
    images = _as_model_images(images).to(module_device(encoder))
    with evaluating(encoder):
        return encoder(images)


def refine_latent(
    generator: nn.Module,
    z_init: torch.Tensor,
    images,
    condition: torch.Tensor,
    steps: int = 100,
    lr: float = 0.05,
    prior_weight: float = 1e-3,
    progress: bool = False,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Optimise z so that G(z, condition) matches ``images``; the generator stays frozen.

    Loss per image = pixel MSE (mean over pixels, in model range) +
    ``prior_weight`` * (||z|| / sqrt(z_dim) - 1)^2. MSE rather than L1 because
    it is the encoder's own training loss and its gradient shrinks smoothly
    near the optimum. The prior keeps ||z|| near sqrt(z_dim), where almost all
    N(0, I) samples (everything G was trained on) lie; pulling towards 0
    instead would leave that shell. Each image keeps the z of its lowest loss.

    Returns (z (N, z_dim), history) where history has per-step batch means
    under "total", "pixel" and "prior", ready for ``pandas.DataFrame(history).plot()``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    device = module_device(generator)
    targets = _as_model_images(images).to(device)
    z = z_init.detach().clone().to(device).float()
    if z.ndim != 2 or z.shape[0] != targets.shape[0]:
        raise ValueError(f"z_init must be (N, z_dim) with N={targets.shape[0]} images, got {tuple(z.shape)}")
    condition = _batched_condition(condition, targets.shape[0]).to(device)
    history: dict[str, list[float]] = {"total": [], "pixel": [], "prior": []}
    best_z, best_loss = z.clone(), torch.full((z.shape[0],), float("inf"), device=device)
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    sqrt_dim = z.shape[1] ** 0.5
    with _frozen(generator):
        _check_generated_size(generator, z, condition, targets)
        for _ in tqdm(range(steps), desc="refining z", disable=not progress):
            pixel = (generator(z, condition) - targets).pow(2).flatten(1).mean(dim=1)  # one per image
            prior = (z.norm(dim=1) / sqrt_dim - 1).pow(2)
            loss = pixel + prior_weight * prior
            with torch.no_grad():  # loss belongs to z before this step's update
                improved = loss < best_loss
                best_loss = torch.where(improved, loss, best_loss)
                best_z[improved] = z[improved]
            optimizer.zero_grad()
            loss.sum().backward()  # sum: each z gets its own image's gradient
            optimizer.step()
            history["total"].append(loss.mean().item())
            history["pixel"].append(pixel.mean().item())
            history["prior"].append(prior.mean().item())
    return (best_z if steps else z).detach(), history


def _check_generated_size(generator: nn.Module, z: torch.Tensor, condition: torch.Tensor,
                          targets: torch.Tensor) -> None:
    with torch.no_grad():
        generated = generator(z[:1], condition[:1])
    if generated.shape[1:] != targets.shape[1:]:
        raise ValueError(
            f"the generator makes {tuple(generated.shape[1:])} images but the faces are "
            f"{tuple(targets.shape[1:])}; crop them to the generator's size first"
        )


def age_face(
    face,
    target: int | float,
    generator: nn.Module,
    encoder: nn.Module,
    source: int | None = None,
    classifier: nn.Module | None = None,
    refine_steps: int = 100,
    cache: LatentCache | None = None,
    output: str = "edit",
    group_means: torch.Tensor | None = None,
    edit_settings: EditSettings = EditSettings(),
    condition_of=None,
) -> AgingResult:
    """Render ``face`` at a target age group.

    ``face``: uint8 (H, W, 3) or float (3, H, W) / (1, 3, H, W) in [-1, 1], at
    the generator's image size. ``target``: a group index, or a float between
    groups (e.g. 0.5) for a soft condition. ``source``: the face's own group
    (e.g. its dataset label); if None the classifier predicts it. The source
    condition is used for refinement and the reconstruction.

    ``output`` picks ``result.aged``: "edit" (default) = the photo plus the
    age change (``result.change``: G(z, target) - G(z, source), cleaned by
    ``edit_settings`` — see :class:`EditSettings`; pass ``group_means``, the
    mean training face per group (K, 3, H, W), for the mask and the blend),
    clipped; "redraw" = G(z, target). Both are in ``result.edit`` and
    ``result.redraw`` whichever is chosen.

    ``condition_of(years) -> (C,)``: for a generator conditioned on the age itself (chapter 6's
    ``age_axis`` schemes); ``target`` and ``source`` are then ages in years, and a ``classifier``
    must be an age regressor in years (``age_axis.AgeJudge``). The edit then adds the raw change
    (``group_means`` and ``edit_settings`` are not used).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    image = _as_model_images(face)
    if image.shape[0] != 1:
        raise ValueError(f"age_face ages one face at a time, got a batch of {image.shape[0]}")
    if condition_of is not None:
        if source is None:
            if classifier is None:
                raise ValueError("the face's age is unknown: pass source=<years> or an age judge")
            with evaluating(classifier):
                source = float(classifier(image.to(module_device(classifier))).reshape(-1)[0])
        source = float(source)
        target_condition = torch.as_tensor(condition_of(target), dtype=torch.float32).reshape(1, -1)
        source_condition = torch.as_tensor(condition_of(source), dtype=torch.float32).reshape(1, -1)
    else:
        n_classes = _n_classes(generator, classifier)
        target_condition = _target_condition(target, n_classes)
        if source is None:
            if classifier is None:
                raise ValueError("the face's age group is unknown: pass source=<group index> or a classifier")
            source = predict_group(classifier, image)
        source = int(source)
        if not 0 <= source < n_classes:
            raise ValueError(f"source group {source} is outside 0..{n_classes - 1}")
        source_condition = one_hot(torch.tensor([source]), n_classes)

    key = LatentCache.key_for(image, source, refine_steps, generator, encoder)
    cached = cache.get(key) if cache is not None else None
    history = None
    if cached is None:
        z = encode(encoder, image)
        if refine_steps > 0:
            z, history = refine_latent(generator, z, image, source_condition, steps=refine_steps)
        at_source = _generate(generator, z, source_condition)
        if cache is not None:
            cache.put(key, (z, at_source))
    else:
        z, at_source = cached
    at_target = _generate(generator, z, target_condition)  # the one generator pass per new target
    reconstruction, redraw = to_uint8(at_source)[0], to_uint8(at_target)[0]
    original = to_uint8(image)[0]
    if condition_of is None:
        change = clean_change(at_target - at_source, source_condition, target_condition, group_means, edit_settings,
                              guide=image.float().cpu())
    else:  # ages in years: the raw change, as chapter 6 measures it (no group means to clean with)
        change = at_target - at_source
    change = change[0].permute(1, 2, 0).numpy() * 127.5  # [-1, 1] units -> pixel levels
    edit = np.clip(np.rint(original.astype(np.float32) + change), 0, 255).astype(np.uint8)
    return AgingResult(
        original=original,
        reconstruction=reconstruction,
        aged=edit if output == "edit" else redraw,
        z=z[0].detach().cpu(),
        source=source,
        target=target,
        history=history,
        redraw=redraw,
        edit=edit,
        change=change.astype(np.float32),
        output=output,
    )


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
    refine_steps: int = 100,
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


def render(generator: nn.Module, z: torch.Tensor, condition: torch.Tensor) -> np.ndarray:
    """G(z, condition) as uint8 images (N, H, W, 3); the condition may be one (C,) row."""
    device = module_device(generator)
    condition = _batched_condition(condition, z.shape[0]).to(device)
    with evaluating(generator):
        return to_uint8(generator(z.to(device), condition))


def predict_group(classifier: nn.Module, image: torch.Tensor) -> int:
    """The classifier's most likely age group for one image (1, 3, H, W)."""
    with evaluating(classifier):
        logits = classifier(image.to(module_device(classifier)))
    return int(logits.argmax(dim=1)[0])


def _target_condition(target, n_classes: int) -> torch.Tensor:
    if isinstance(target, bool) or not isinstance(target, (int, float, np.integer, np.floating)):
        raise ValueError(f"target must be a group index or a float position, got {target!r}")
    if isinstance(target, (int, np.integer)):
        if not 0 <= target < n_classes:
            raise ValueError(f"target group {target} is outside 0..{n_classes - 1}")
        return one_hot(torch.tensor([int(target)]), n_classes)
    return soft_condition(float(target), n_classes).unsqueeze(0)


def _n_classes(generator: nn.Module, classifier: nn.Module | None) -> int:
    for model in (generator, classifier):
        if model is not None and hasattr(model, "n_classes"):
            return int(model.n_classes)
    raise ValueError("cannot tell the number of age groups: the generator has no n_classes attribute")


def _as_model_images(images) -> torch.Tensor:
    """uint8 NHWC/HWC (numpy or tensor) or float NCHW/CHW -> float NCHW in [-1, 1]."""
    if isinstance(images, np.ndarray) or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8):
        tensor = torch.as_tensor(images)
        if tensor.dtype != torch.uint8:
            raise ValueError(f"numpy images must be uint8 (H, W, 3), got {tensor.dtype}")
        if tensor.ndim not in (3, 4) or tensor.shape[-1] != 3:
            raise ValueError(f"uint8 images must be (H, W, 3) or (N, H, W, 3), got {tuple(tensor.shape)}")
        return to_model_range(tensor)
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        tensor = images.detach().float()
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 4 or tensor.shape[1] != 3:
            raise ValueError(f"float images must be (3, H, W) or (N, 3, H, W), got {tuple(images.shape)}")
        return tensor
    raise ValueError(f"expected uint8 (H, W, 3) or float (N, 3, H, W) images, got {type(images).__name__}")


def _batched_condition(condition, count: int) -> torch.Tensor:
    condition = torch.as_tensor(condition, dtype=torch.float32)
    if condition.ndim == 1:
        condition = condition.unsqueeze(0)
    if condition.shape[0] == 1 and count != 1:
        condition = condition.expand(count, -1)
    if condition.ndim != 2 or condition.shape[0] != count:
        raise ValueError(f"condition must be (C,) or ({count}, C), got {tuple(condition.shape)}")
    return condition


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block; both restored after."""
    with eval_mode(model), frozen_parameters(model):
        yield