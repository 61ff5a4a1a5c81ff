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
  change is cleaned first (``age_change.EditSettings``).
  Chapter 5 measures both outputs against ground truth.

``photo_aging`` applies the change to a whole photograph.
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

from .age_change import EditSettings, clean_change
from .tensors import one_hot, soft_condition, to_model_range, to_uint8
from .training import eval_mode, evaluating, frozen_parameters, module_device


OUTPUTS = ("edit", "redraw")
REFINE_STEPS = 100  # gradient steps on z after the encoder's guess: where the reconstruction stops improving


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
    steps: int = REFINE_STEPS,
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
    refine_steps: int = REFINE_STEPS,
    cache: LatentCache | None = None,
    output: str = "edit",
    group_means: torch.Tensor | None = None,
    edit_settings: EditSettings = EditSettings(),
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
    """
    image = _one_face(face, output)
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
    z, at_source, history = _fit_latent(image, source, source_condition, generator, encoder, refine_steps, cache)
    at_target = _generate(generator, z, target_condition)  # the one generator pass per new target
    change = clean_change(at_target - at_source, source_condition, target_condition, group_means, edit_settings,
                          guide=image.float().cpu())
    return _aging_result(image, z, at_source, at_target, change, source, target, history, output)


def age_face_in_years(
    face,
    target: float,
    generator: nn.Module,
    encoder: nn.Module,
    condition_of,
    source: float | None = None,
    judge: nn.Module | None = None,
    refine_steps: int = REFINE_STEPS,
    cache: LatentCache | None = None,
    output: str = "edit",
) -> AgingResult:
    """:func:`age_face` for a generator conditioned on the age itself (chapter 6): ages in years.

    ``condition_of(years) -> (C,)`` codes an age for the generator (``conditions.scheme_condition``).
    ``source``: the face's age; if None the ``judge`` (an ``age_axis.AgeJudge``) estimates it. The
    edit adds the raw change G(z, target) - G(z, source): there are no group means to clean it with.
    """
    image = _one_face(face, output)
    if source is None:
        if judge is None:
            raise ValueError("the face's age is unknown: pass source=<years> or an age judge")
        with evaluating(judge):
            source = float(judge(image.to(module_device(judge))).reshape(-1)[0])
    source = float(source)
    target_condition = torch.as_tensor(condition_of(target), dtype=torch.float32).reshape(1, -1)
    source_condition = torch.as_tensor(condition_of(source), dtype=torch.float32).reshape(1, -1)
    z, at_source, history = _fit_latent(image, source, source_condition, generator, encoder, refine_steps, cache)
    at_target = _generate(generator, z, target_condition)
    return _aging_result(image, z, at_source, at_target, at_target - at_source, source, target, history, output)


def _one_face(face, output: str) -> torch.Tensor:
    """One face as a float (1, 3, H, W) batch in [-1, 1]; checks the output asked for."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    image = _as_model_images(face)
    if image.shape[0] != 1:
        raise ValueError(f"age_face ages one face at a time, got a batch of {image.shape[0]}")
    return image


def _fit_latent(image, source, source_condition, generator, encoder, refine_steps, cache):
    """(z, G(z, source), refinement history) for one face: encoder + refinement, or the cache's copy."""
    key = LatentCache.key_for(image, source, refine_steps, generator, encoder)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return (*cached, None)
    z, history = encode(encoder, image), None
    if refine_steps > 0:
        z, history = refine_latent(generator, z, image, source_condition, steps=refine_steps)
    at_source = _generate(generator, z, source_condition)
    if cache is not None:
        cache.put(key, (z, at_source))
    return z, at_source, history


def _aging_result(image, z, at_source, at_target, change, source, target, history, output) -> AgingResult:
    """Both outputs of one aged face: the redraw G(z, target) and the photo plus the change."""
    original = to_uint8(image)[0]
    change = change[0].permute(1, 2, 0).numpy() * 127.5  # [-1, 1] units -> pixel levels
    edit = np.clip(np.rint(original.astype(np.float32) + change), 0, 255).astype(np.uint8)
    redraw = to_uint8(at_target)[0]
    return AgingResult(original=original, reconstruction=to_uint8(at_source)[0],
                       aged=edit if output == "edit" else redraw, z=z[0].detach().cpu(), source=source,
                       target=target, history=history, redraw=redraw, edit=edit, change=change.astype(np.float32),
                       output=output)


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