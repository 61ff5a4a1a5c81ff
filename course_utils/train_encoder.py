"""Training the encoder: learn to invert a frozen generator on generated pairs.

Pairs (G(z, y), z) are made on the fly, a whole batch at a time, by the frozen
generator in eval mode under ``torch.no_grad`` — never one image at a time.
The loss is the MSE on z; an optional image-space term ``||G(E(x), y) - x||²``
(weighted by ``image_loss_weight``) lets gradients flow back through the frozen G.

How well the encoder works is reported as the *unexplained variance*
MSE / Var(z) on held-out pairs: 0.6 (the original blog's final loss, with
Var(z) = 1) means 60% of z's variance is not recovered.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import paths
from .checkpoints import check_config, load_checkpoint
from .conditions import random_conditions, scheme_of
from .distributed import DistributedContext, unwrap, wrap_ddp
from .models import Encoder, Generator
from .presets import DEFAULT
from .training import (LogWindow, RunConfig, compiled, finish_run, history_rows, resume_run, save_run, setting,
                       start_run, step_seed)

MODEL_KEYS = ("z_dim", "image_size", "width")
HELD_OUT_RANK = 1_000_003  # a pseudo-rank for held-out pairs: never used by a training rank


@dataclass
class EncoderConfig(RunConfig):
    """Everything that defines an encoder training run (saved in its checkpoint)."""

    width: int = setting(DEFAULT.encoder_width, "base channel width of the encoder")
    batch_size: int = setting(DEFAULT.encoder_batch, "generated (image, z) pairs per step on each process")
    steps: int = setting(DEFAULT.encoder_steps, "train until this step (the presets table has every run's length)")
    hidden: int = setting(DEFAULT.encoder_hidden, "units of the encoder's hidden fully connected layer")
    lr: float = setting(DEFAULT.encoder_lr, "Adam learning rate")
    betas: tuple[float, float] = setting((0.9, 0.999), "Adam's betas")
    image_loss_weight: float = setting(0.0, "weight of an image-space loss ||G(E(x)) - x||^2 beside the z loss")
    eval_every: int = setting(200, "measure the held-out unexplained variance every this many steps")
    eval_pairs: int = setting(DEFAULT.encoder_eval_pairs, "held-out pairs the unexplained variance is measured on")

    def __post_init__(self):
        super().__post_init__()
        self.betas = tuple(self.betas)
        self._require_at_least_one("hidden", "eval_every", "eval_pairs")
        if self.image_loss_weight < 0:
            raise ValueError(f"image_loss_weight must be >= 0, got {self.image_loss_weight}")

    @classmethod
    def for_generator(cls, generator: Generator, **settings) -> "EncoderConfig":
        """A config whose z_dim, n_classes and image_size are taken from ``generator``."""
        generator = unwrap(generator)
        return cls(z_dim=generator.z_dim, n_classes=generator.n_classes,
                   image_size=generator.image_size, condition=scheme_of(generator), **settings)


@dataclass
class EncoderResult:
    """What :func:`train_encoder` hands back: the encoder (CPU, eval mode) and its record."""

    encoder: Encoder
    history: pd.DataFrame
    checkpoint_path: Path
    unexplained_variance: float
    r2: np.ndarray


def build_encoder(config: EncoderConfig) -> Encoder:
    """A freshly initialised encoder of the configured sizes."""
    return Encoder(config.z_dim, config.image_size, config.width, config.hidden)


def _check_generator_fits(generator: Generator, config: EncoderConfig) -> None:
    wanted = {"z_dim": config.z_dim, "n_classes": config.n_classes, "image_size": config.image_size,
              "condition": config.condition}
    actual = {key: getattr(generator, key) for key in wanted if key != "condition"}
    actual["condition"] = scheme_of(generator)
    check_config(actual, wanted, wanted, "the generator")


def frozen_copy(generator: nn.Module, device: torch.device) -> nn.Module:
    """A private eval-mode copy of the generator with no trainable parameters."""
    copy_ = copy.deepcopy(unwrap(generator)).to(device).eval()
    for parameter in copy_.parameters():
        parameter.requires_grad_(False)
    return copy_


def generated_pairs(
    generator: nn.Module, z_dim: int, n_classes: int, batch_size: int, noise: torch.Generator,
    device: torch.device, scheme: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of training pairs: images G(z, y), their z and their condition y.

    y is a random one-hot age group, or a random condition of ``scheme`` (default: the generator's
    ``condition_scheme``, see ``conditions.random_conditions``).
    """
    z = torch.randn(batch_size, z_dim, generator=noise, device=device)
    condition = random_conditions(scheme or scheme_of(generator), n_classes, batch_size, noise, device)
    with torch.no_grad():
        images = generator(z, condition).float()
    return images, z, condition


def encoder_step(
    encoder: nn.Module,
    generator: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    noise: torch.Generator,
    image_loss_weight: float = 0.0,
    scheme: str | None = None,
) -> torch.Tensor:
    """One encoder update on fresh pairs from the frozen generator; returns (z MSE, image MSE), detached.

    The image MSE is 0 when ``image_loss_weight`` is 0 (it is then not computed).
    """
    # Fresh z and age groups y; x = G(z, y) under no_grad: the generator is only a data source here.
    images, z, condition = generated_pairs(generator, generator.z_dim, generator.n_classes, batch_size,
                                           noise, noise.device, scheme)
    z_hat = encoder(images)
    z_loss = F.mse_loss(z_hat.float(), z)
    image_loss = torch.zeros((), device=z.device)
    if image_loss_weight > 0:
        # G's weights are frozen, but gradients still flow through G into the encoder.
        image_loss = F.mse_loss(generator(z_hat, condition).float(), images)
    loss = z_loss + image_loss_weight * image_loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return torch.stack([z_loss, image_loss]).detach().float()


@torch.no_grad()
def _held_out_predictions(
    encoder: nn.Module, generator: nn.Module, n: int, seed: int, batch_size: int = 256,
    scheme: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(generator.parameters()).device
    noise = torch.Generator(device=device).manual_seed(step_seed(seed, HELD_OUT_RANK, 0))
    was_training = (encoder.training, generator.training)
    encoder.eval()
    generator.eval()
    z_all, z_hat_all = [], []
    try:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            images, z, _ = generated_pairs(generator, generator.z_dim, generator.n_classes, count, noise, device,
                                           scheme)
            z_all.append(z.cpu())
            z_hat_all.append(encoder(images).float().cpu())
    finally:
        encoder.train(was_training[0])
        generator.train(was_training[1])
    return torch.cat(z_all), torch.cat(z_hat_all)


def _unexplained(z: torch.Tensor, z_hat: torch.Tensor) -> float:
    return float(F.mse_loss(z_hat, z) / z.var())


def _r2(z: torch.Tensor, z_hat: torch.Tensor) -> np.ndarray:
    residual = ((z - z_hat) ** 2).sum(0)
    total = ((z - z.mean(0)) ** 2).sum(0)
    return (1 - residual / total).numpy()


def unexplained_variance(encoder: nn.Module, generator: nn.Module, n: int = 1024, seed: int = 0,
                         scheme: str | None = None) -> float:
    """MSE(E(G(z, y)), z) / Var(z) on ``n`` fresh held-out pairs: the share of z not recovered."""
    return _unexplained(*_held_out_predictions(encoder, generator, n, seed, scheme=scheme))


def latent_r2(encoder: nn.Module, generator: nn.Module, n: int = 1024, seed: int = 0,
              scheme: str | None = None) -> np.ndarray:
    """Per-dimension R² of the encoder's z on ``n`` fresh held-out pairs, shape (z_dim,)."""
    return _r2(*_held_out_predictions(encoder, generator, n, seed, scheme=scheme))


def train_encoder(
    generator: Generator,
    config: EncoderConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device | None = None,
    context: DistributedContext | None = None,
    encoder: nn.Module | None = None,
) -> EncoderResult:
    """Train an encoder to invert ``generator`` (which is copied and frozen, never changed).

    Writes ``run_dir/encoder.pt`` every ``checkpoint_every`` steps and at the
    end; ``resume=True`` continues an existing checkpoint up to ``config.steps``.
    The history has the training z-MSE, the image MSE, and every
    ``eval_every`` steps the held-out unexplained variance.

    ``encoder``: your own model to train (in place) instead of a fresh
    ``Encoder`` of the config's sizes; it must map the generator's images to
    (N, z_dim). :func:`load_encoder` rebuilds ``Encoder(config sizes)``, so an
    encoder of another architecture loads only into your own model.
    """
    config = config or EncoderConfig()
    _check_generator_fits(generator, config)
    run = start_run(config, run_dir, "encoder.pt", device, context)
    context = run.context
    frozen_generator = frozen_copy(generator, run.device)
    encoder = encoder if encoder is not None else build_encoder(config)
    run.place(frozen_generator, encoder)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.lr, betas=config.betas)
    models, optimizers = {"encoder": encoder}, {"encoder": optimizer}
    noise = torch.Generator(device=run.device)

    checkpoint = resume_run(run, "encoder", MODEL_KEYS + ("hidden",), models, optimizers) if resume else None
    history = history_rows(checkpoint)
    step = int(checkpoint["step"]) if checkpoint is not None else 0

    # The encoder runs forward once per step, so DDP's default buffer broadcast is safe.
    train_model = wrap_ddp(compiled(encoder, config.compile), context)
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and context.is_main),
               desc="Encoder", unit="step")
    window = LogWindow(step, config.batch_size * context.world_size)
    encoder.train()
    held_out = None  # the last step's held-out (z, E(G(z, y))), reused for the final figures
    while step < config.steps:
        # Noise of step s on rank r is seeded by (seed, r, s): resuming needs no saved stream.
        noise.manual_seed(step_seed(config.seed, context.rank, step))
        with run.autocast:  # bf16 on CUDA, nothing elsewhere: the step itself stays plain fp32 code
            window.add(encoder_step(train_model, frozen_generator, optimizer, config.batch_size, noise,
                                    image_loss_weight=config.image_loss_weight, scheme=config.condition))
        step += 1
        held_out = _after_step(run, step, window, bar, history, encoder, frozen_generator, models, optimizers)
    bar.close()
    finish_run(run, encoder=encoder)

    if held_out is None:  # a finished run resumed, or a rank that does not evaluate
        held_out = _held_out_predictions(encoder, frozen_generator, config.eval_pairs, config.seed,
                                         scheme=config.condition)
    final_unexplained, r2 = _unexplained(*held_out), _r2(*held_out)
    encoder = unwrap(encoder).to("cpu", memory_format=torch.contiguous_format).eval()
    return EncoderResult(encoder, _history_frame(history), run.checkpoint_path, final_unexplained, r2)


def _after_step(run, step: int, window: LogWindow, bar, history: list[dict], encoder, frozen_generator,
                models: dict, optimizers: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Log (with the held-out unexplained variance every ``eval_every`` steps) and checkpoint in turn.

    Returns the held-out predictions when it evaluated the last step, else None."""
    config, last = run.config, step == run.config.steps
    held_out = None
    if step % config.log_every == 0 or last:
        (z_mse, image_mse), rate = window.close(step)
        row = {"step": step, "loss": z_mse, "image_loss": image_mse,
               "unexplained_variance": float("nan"), "images_per_s": rate}
        if run.context.is_main and (step % config.eval_every == 0 or last):
            predictions = _held_out_predictions(encoder, frozen_generator, config.eval_pairs, config.seed,
                                                scheme=config.condition)
            row["unexplained_variance"] = _unexplained(*predictions)
            held_out = predictions if last else None
        history.append(row)
        bar.set_postfix(loss=f"{z_mse:.3f}", img_s=f"{rate:.0f}")
        bar.update(step - bar.n)
    if step % config.checkpoint_every == 0 or last:
        save_run(run, "encoder", step, models, optimizers, _history_frame(history))
    return held_out


def _history_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["step", "loss", "image_loss", "unexplained_variance", "images_per_s"])


def load_encoder(path: str | Path | None = None, device: str | torch.device = "cpu") -> Encoder:
    """The encoder of a checkpoint (default ``run_dir()/encoder.pt``), in eval mode on ``device``."""
    path = Path(path) if path is not None else paths.run_dir() / "encoder.pt"
    checkpoint = load_checkpoint(path, "encoder", map_location="cpu")
    config = EncoderConfig.from_dict(checkpoint["config"])
    encoder = build_encoder(config)
    try:
        encoder.load_state_dict(checkpoint["models"]["encoder"])
    except RuntimeError as error:
        raise ValueError(f"the encoder weights in {path} do not fit its config {config}: {error}") from None
    return encoder.to(device).eval()
