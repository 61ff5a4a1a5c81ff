"""Training the conditional DCGAN: the plain step, the batches, and the resumable loop around them.

:func:`gan_step` is the whole method in fp32, top to bottom. :func:`train_gan`
wraps it from outside: mixed precision (``torch.autocast``), channels-last
memory, ``torch.compile`` and DistributedDataParallel never enter the step.

Randomness is arranged so that a run stopped and resumed ends with exactly
the weights of a run that went straight through (on the CPU, same settings):

* the batch order comes from :class:`FaceBatches`, whose state is saved;
* the noise of step ``s`` on rank ``r`` comes from a generator re-seeded with
  ``(seed, r, s)``, so no rank has to save or restore a random stream;
* models, Adam moments, BatchNorm running statistics, the fixed sample noise,
  the loss history and the global RNG states all go into the checkpoint.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from . import paths
from .checkpoints import load_checkpoint
from .device import fits_on_device
from .distributed import DistributedContext, unwrap, wrap_ddp
from .conditions import sample_grid_conditions
from .models import Discriminator, Generator
from .tensors import one_hot
from .training import (LogWindow, RunConfig, compiled, finish_run, history_rows, resume_run, save_run, setting,
                       start_run, step_seed)

MODEL_KEYS = ("z_dim", "n_classes", "image_size", "width")
STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake")


@dataclass
class GanConfig(RunConfig):
    """Everything that defines a GAN training run (saved in its checkpoint): the course's balanced
    width-32 DCGAN, batch 64, Adam(2e-4, 0.5/0.999), plus the settings of :class:`RunConfig`."""

    lr_g: float = setting(2e-4, "the generator's Adam learning rate")
    lr_d: float = setting(2e-4, "the discriminator's Adam learning rate")
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam's betas for both networks")
    real_label_smoothing: float = setting(0.9, "D's target for real faces (one-sided smoothing; fakes get 0)")
    ema_decay: float = setting(0.999, "keep a moving average of G's weights with this decay (0: none)")
    sample_every: int = setting(250, "draw the fixed-noise sample grid every this many steps")
    n_sample_noise: int = setting(8, "noise vectors in the sample grid, each drawn once per age group")
    sync_batchnorm: bool = setting(False, "synchronise BatchNorm statistics across GPUs (NCCL only)")

    def __post_init__(self):
        super().__post_init__()
        self.betas = tuple(self.betas)
        self._require_at_least_one("sample_every", "n_sample_noise")
        if not 0 < self.real_label_smoothing <= 1:
            raise ValueError(f"real_label_smoothing must be in (0, 1], got {self.real_label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class GanResult:
    """What :func:`train_gan` hands back: models on the CPU in eval mode, and the record."""

    generator: nn.Module
    discriminator: nn.Module
    history: pd.DataFrame
    generator_ema: nn.Module | None
    checkpoint_path: Path
    samples_dir: Path
    steps: int


def build_gan(config: GanConfig) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator of the configured sizes."""
    generator = Generator(config.z_dim, config.n_classes, config.image_size, config.width)
    discriminator = Discriminator(config.n_classes, config.image_size, config.width)
    return generator, discriminator


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    condition: torch.Tensor,
    z: torch.Tensor,
    real_target: float = 0.9,
) -> torch.Tensor:
    """One conditional DCGAN update, D then G; returns (loss_d, loss_g, d_real, d_fake), detached.

    ``d_real``/``d_fake`` are D's mean probabilities on the real and the generated batch.
    """
    fake = generator(z, condition)

    # D learns to tell real faces (target ``real_target``, one-sided smoothing) from fakes (0).
    # Two separate passes, all-real then all-fake: each BatchNorm batch holds one kind of image.
    logits_real = discriminator(real, condition)
    logits_fake = discriminator(fake.detach(), condition)  # detach: this loss must not reach G
    loss_d = F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, real_target)) \
        + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    # G learns to make D say "real" (the non-saturating loss). D's weights get gradients
    # here too, but only opt_g steps, and D's next zero_grad clears them.
    logits_g = discriminator(fake, condition)
    loss_g = F.binary_cross_entropy_with_logits(logits_g, torch.ones_like(logits_g))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()

    stats = [loss_d, loss_g, torch.sigmoid(logits_real).mean(), torch.sigmoid(logits_fake).mean()]
    return torch.stack(stats).detach().float()


class FaceBatches:
    """The real faces, their conditions and the noise z of every training step.

    ``labels`` are integer age groups (N,), made one-hot per batch, or float
    condition vectors (N, n_classes) of any scheme (``conditions.condition_for_ages``),
    used as they are.

    The whole uint8 array stays on the training device when it fits, so a
    batch is one index operation plus normalisation there: no DataLoader, no
    per-image Python work in the hot loop.

    The order is like ``DistributedSampler`` with ``drop_last``: a fresh
    shuffle every epoch, drawn from a generator seeded identically on all
    ranks, of which each rank keeps every ``world_size``-th index from its
    rank on. The state (epoch, position, and the generator's state at the
    start of the epoch) goes into checkpoints, so a resumed run continues the
    same stream. The noise of step ``s`` comes from a generator re-seeded
    with ``(seed, rank, s)``.
    """

    def __init__(
        self,
        images_uint8: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        n_classes: int,
        batch_size: int,
        seed: int = 0,
        z_dim: int = 100,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ):
        images = torch.as_tensor(images_uint8)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        labels = np.asarray(labels)
        # Float (N, C) rows are condition vectors used as given; anything else is integer group labels.
        self.vectors = labels.ndim == 2
        if self.vectors:
            labels = torch.as_tensor(labels.copy(), dtype=torch.float32)
            if labels.shape != (images.shape[0], n_classes):
                raise ValueError(f"condition vectors must have shape ({images.shape[0]}, {n_classes}), "
                                 f"got {tuple(labels.shape)}")
        else:
            labels = torch.as_tensor(labels.copy(), dtype=torch.long)  # a copy: cache arrays are read-only
            if labels.shape != (images.shape[0],):
                raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
            if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
                raise ValueError(f"labels must lie in [0, {n_classes - 1}], got {labels.min()}..{labels.max()}")
        shard = len(labels) // world_size
        if batch_size < 1 or shard < batch_size:
            raise ValueError(f"{len(labels)} items split over {world_size} rank(s) give {shard} per rank, "
                             f"fewer than one batch of {batch_size}")
        self.device, self.n_classes, self.channels_last = torch.device(device), n_classes, channels_last
        self.batch_size, self.seed, self.z_dim = batch_size, seed, z_dim
        self.rank, self.world_size = rank, world_size
        home = self.device if fits_on_device(images.numel(), self.device) else torch.device("cpu")
        self.images, self.labels = images.contiguous().to(home), labels.to(home)
        if home.type == "cpu" and self.device.type == "cuda":
            self.images = self.images.pin_memory()
        self.batches_per_epoch = shard // batch_size
        self.shuffle = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator(device=self.device)
        self.set_epoch(0)

    @classmethod
    def for_config(cls, images_uint8, labels, config: "GanConfig", device: torch.device,
                   context: DistributedContext | None = None, channels_last: bool = False) -> "FaceBatches":
        """The batches of a training run; the images must have the configured size."""
        context = context or DistributedContext()
        batches = cls(images_uint8, labels, config.n_classes, config.batch_size, config.seed, config.z_dim,
                      device, context.rank, context.world_size, channels_last)
        height, width = batches.images.shape[1:3]
        if (height, width) != (config.image_size, config.image_size):
            raise ValueError(f"images are {height}x{width}, but the config says image_size={config.image_size}")
        return batches

    def __len__(self) -> int:
        return self.images.shape[0]

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch``: draw its permutation and take this rank's shard."""
        self.epoch, self.position = epoch, 0
        self.epoch_start_state = self.shuffle.get_state()
        permutation = torch.randperm(len(self), generator=self.shuffle)
        usable = self.batches_per_epoch * self.batch_size * self.world_size
        self.shard = permutation[:usable][self.rank :: self.world_size].to(self.images.device)

    def next_indices(self) -> torch.Tensor:
        """The next batch of indices of this rank; a new epoch starts when the shard runs out."""
        if self.position >= self.batches_per_epoch:
            self.set_epoch(self.epoch + 1)
        start = self.position * self.batch_size
        self.position += 1
        return self.shard[start : start + self.batch_size]

    def next(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real images (B, 3, H, W) in [-1, 1], conditions (B, n_classes), noise z) for ``step``."""
        indices = self.next_indices()
        images = self.images[indices].to(self.device, non_blocking=True)
        labels = self.labels[indices].to(self.device, non_blocking=True)
        # NHWC uint8 permuted to NCHW *is* channels_last in memory, so that layout costs nothing.
        real = images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if not self.channels_last:
            real = real.contiguous()
        self.noise.manual_seed(step_seed(self.seed, self.rank, step))
        z = torch.randn(real.shape[0], self.z_dim, generator=self.noise, device=self.device)
        return real, (labels if self.vectors else one_hot(labels, self.n_classes)), z

    def state_dict(self) -> dict:
        """Where the stream stands, as tensors and plain values (for checkpoints)."""
        return {"epoch": self.epoch, "position": self.position,
                "epoch_start_generator_state": self.epoch_start_state.clone(),
                "world_size": self.world_size, "batch_size": self.batch_size, "n_items": len(self)}

    def load_state_dict(self, state: dict) -> None:
        """Continue a saved stream; a changed data size, batch size or rank count starts a new epoch."""
        self.shuffle.set_state(state["epoch_start_generator_state"])
        self.set_epoch(state["epoch"])
        if (state["world_size"], state["batch_size"], state["n_items"]) == (
                self.world_size, self.batch_size, len(self)):
            self.position = state["position"]
        else:
            self.set_epoch(state["epoch"] + 1)


def moving_average(decay: float):
    """The update of an exponential moving average of weights, for ``AveragedModel(avg_fn=...)``.

    Early on the decay is lowered to (1 + n) / (10 + n) after n updates, so the average forgets the
    random start within tens of steps instead of thousands: a plain 0.999 still holds 22% of the
    initial weights after 1,500 steps, enough to keep the averaged generator drawing one blur.
    """
    def update(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        rate = torch.clamp((1 + updates) / (10 + updates), max=decay).to(averaged.dtype)
        return averaged * rate + current * (1 - rate)

    return update


def fixed_sample_inputs(config: GanConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and conditions of the sample grids: the same z in every age group (row).

    For another condition scheme the rows are ``conditions.sample_grid_conditions`` (e.g. ages 20 to 80).
    """
    noise = torch.Generator().manual_seed(config.seed + 1)
    z = torch.randn(config.n_sample_noise, config.z_dim, generator=noise)
    if config.condition != "groups":
        rows = sample_grid_conditions(config.condition, config.n_classes)
        return z.repeat(len(rows), 1), rows.repeat_interleave(config.n_sample_noise, dim=0)
    z = z.repeat(config.n_classes, 1)
    labels = torch.arange(config.n_classes).repeat_interleave(config.n_sample_noise)
    return z, one_hot(labels, config.n_classes)


@torch.no_grad()
def render_samples(generator: nn.Module, z: torch.Tensor, condition: torch.Tensor,
                   autocast: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """Generator output for fixed inputs, in eval mode, as float32 CPU images in [-1, 1]."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        with autocast or contextlib.nullcontext():
            images = generator(z.to(device), condition.to(device))
    finally:
        generator.train(was_training)
    return images.float().cpu()


def _history_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["step", *STAT_NAMES, "images_per_s"])


def _check_models_fit(generator: nn.Module, discriminator: nn.Module, config: GanConfig) -> None:
    for name, model, keys in (("generator", generator, ("z_dim", "n_classes", "image_size")),
                              ("discriminator", discriminator, ("n_classes", "image_size"))):
        model = unwrap(model)
        wrong = [f"{key}={getattr(model, key)} (config: {getattr(config, key)})" for key in keys
                 if hasattr(model, key) and getattr(model, key) != getattr(config, key)]
        if wrong:
            raise ValueError(f"the {name} does not fit the config: {', '.join(wrong)}")


def train_gan(
    images_uint8,
    labels,
    config: GanConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    sample_callback: Callable[[int, torch.Tensor], None] | None = None,
    device: str | torch.device | None = None,
    context: DistributedContext | None = None,
    generator: nn.Module | None = None,
    discriminator: nn.Module | None = None,
) -> GanResult:
    """Train the conditional DCGAN on uint8 faces (N, S, S, 3) with integer age labels (N,).

    ``labels`` may instead be float condition vectors (N, n_classes) of the
    scheme ``config.condition`` (``conditions.condition_for_ages``); the
    checkpoint records the scheme, and the generators returned and loaded by
    :func:`load_generator` carry it as ``generator.condition_scheme``.

    Writes ``run_dir/gan.pt`` (every ``checkpoint_every`` steps and at the end)
    and sample grids ``run_dir/gan_samples/step_XXXXXX.png`` (rows are age
    groups, columns share z). With ``resume=True`` an existing checkpoint is
    continued up to ``config.steps``; without one, training starts afresh.
    ``sample_callback(step, images)`` receives each sample batch (e.g. for a
    live notebook view). ``context`` comes from :func:`init_distributed` in a
    torchrun launch; by default the run is single-process.

    ``generator``/``discriminator``: your own models to train (in place)
    instead of fresh ``Generator``/``Discriminator`` of the config's sizes,
    e.g. ``Discriminator(2, 64, width=8)``. Their z_dim, n_classes and
    image_size must match the config. The checkpoint stores the config, so
    :func:`load_generator` rebuilds ``Generator(config sizes)``: a generator
    of another width or architecture than the config's does not load with it
    (a clear ValueError); load its state dict into your own model instead.
    """
    config = config or GanConfig()
    run = start_run(config, run_dir, "gan.pt", device, context)
    loop = _GanLoop(config, run, generator, discriminator, sample_callback)
    batches = FaceBatches.for_config(images_uint8, labels, config, run.device, run.context, run.channels_last)
    step = loop.resume(batches) if resume else 0
    train_generator, train_discriminator = loop.wrapped_for_steps()
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and run.context.is_main),
               desc="GAN", unit="step")
    window = LogWindow(step, config.batch_size * run.context.world_size)
    loop.generator.train()
    loop.discriminator.train()
    while step < config.steps:
        real, condition, z = batches.next(step)
        with run.autocast:  # bf16 on CUDA, nothing elsewhere: the step itself stays plain fp32 code
            window.add(gan_step(train_generator, train_discriminator, *loop.optimizers.values(), real, condition, z,
                                real_target=config.real_label_smoothing))
        if loop.average is not None:
            loop.average.update_parameters(loop.generator)
        step += 1
        loop.after_step(step, window, bar, batches)
    bar.close()
    return loop.finish(step)


class _GanLoop:
    """What :func:`train_gan` keeps around its plain step: models, optimizers, the moving average of G,
    the fixed sample noise, the history, and the logging, sampling and checkpoints between steps."""

    def __init__(self, config: GanConfig, run, generator, discriminator, sample_callback):
        self.config, self.run, self.sample_callback = config, run, sample_callback
        self.generator = generator if generator is not None else Generator(
            config.z_dim, config.n_classes, config.image_size, config.width)
        self.discriminator = discriminator if discriminator is not None else Discriminator(
            config.n_classes, config.image_size, config.width)
        _check_models_fit(self.generator, self.discriminator, config)
        run.place(self.generator, self.discriminator)
        self.models = {"generator": self.generator, "discriminator": self.discriminator}
        self.average = None
        if config.ema_decay:  # an average of G's weights over recent steps, updated after every step
            self.average = AveragedModel(self.generator, avg_fn=moving_average(config.ema_decay), use_buffers=True)
            self.models["generator_ema"] = self.average
        # The order gan_step takes them in: G's optimizer, then D's.
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=config.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=config.betas),
        }
        self.fixed_z, self.fixed_condition = fixed_sample_inputs(config)
        self.history: list[dict] = []
        self.samples_dir = run.checkpoint_path.parent / "gan_samples"

    def resume(self, batches: FaceBatches) -> int:
        """Continue the run's checkpoint if there is one -> the step to start from."""
        checkpoint = resume_run(self.run, "gan", MODEL_KEYS, self.models, self.optimizers)
        if checkpoint is None:
            return 0
        _warn_changed_training_settings(checkpoint["config"], self.config)
        batches.load_state_dict(checkpoint["sampler"])
        self.fixed_z = checkpoint["fixed_noise"]["z"].cpu()
        self.fixed_condition = checkpoint["fixed_noise"]["condition"].cpu()
        self.history = history_rows(checkpoint)
        return int(checkpoint["step"])

    def wrapped_for_steps(self) -> tuple[nn.Module, nn.Module]:
        """The models as the step sees them: compiled and DDP-wrapped when asked for.

        G runs forward once per step, so its buffers may be broadcast from rank 0 as usual.
        D runs forward twice (real, then fake) before its backward, and once more for G's
        loss; DDP's default buffer broadcast at each forward would overwrite BatchNorm
        buffers in place between passes whose graphs still hold them, and break autograd.
        We keep the all-real / all-fake batches (DCGAN practice: one mixed batch would
        change what D's BatchNorm normalises) and turn D's buffer broadcast off instead:
        each rank keeps its own D running statistics, which training never uses (finish_run
        adopts rank 0's at the end). SyncBatchNorm swaps the BatchNorm layers in place and
        keeps the same parameter objects, so the optimizers still hold the right tensors.
        """
        config, context = self.config, self.run.context
        sync_batchnorm = config.sync_batchnorm and context.is_distributed
        return (wrap_ddp(compiled(self.generator, config.compile), context, broadcast_buffers=True,
                         sync_batchnorm=sync_batchnorm),
                wrap_ddp(compiled(self.discriminator, config.compile), context, broadcast_buffers=False,
                         sync_batchnorm=sync_batchnorm))

    def after_step(self, step: int, window: LogWindow, bar, batches: FaceBatches) -> None:
        """Log, draw the sample grid and save a checkpoint when their turn comes."""
        config, last = self.config, step == self.config.steps
        if step % config.log_every == 0 or last:
            means, rate = window.close(step)
            row = {"step": step, **dict(zip(STAT_NAMES, means)), "images_per_s": rate}
            self.history.append(row)
            bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}", img_s=f"{rate:.0f}")
            bar.update(step - bar.n)
        if (step % config.sample_every == 0 or last) and self.run.context.is_main:
            from torchvision.utils import save_image  # here: torchvision's import costs seconds (torch._dynamo)

            images = render_samples(self.generator, self.fixed_z, self.fixed_condition, self.run.autocast)
            self.samples_dir.mkdir(parents=True, exist_ok=True)
            save_image(images, self.samples_dir / f"step_{step:06d}.png", nrow=config.n_sample_noise,
                       normalize=True, value_range=(-1, 1))
            if self.sample_callback is not None:
                self.sample_callback(step, images)
        if step % config.checkpoint_every == 0 or last:
            save_run(self.run, "gan", step, self.models, self.optimizers, _history_frame(self.history),
                     sampler=batches.state_dict(), fixed_noise={"z": self.fixed_z, "condition": self.fixed_condition})

    def finish(self, step: int) -> GanResult:
        """Every rank ends with rank 0's models; they come back on the CPU in eval mode."""
        finish_run(self.run, generator=self.generator, discriminator=self.discriminator)

        def on_cpu(model: nn.Module) -> nn.Module:
            model = unwrap(model).to("cpu", memory_format=torch.contiguous_format).eval()
            model.condition_scheme = self.config.condition
            return model

        average = on_cpu(self.average.module) if self.average is not None else None
        return GanResult(on_cpu(self.generator), on_cpu(self.discriminator), _history_frame(self.history), average,
                         self.run.checkpoint_path, self.samples_dir, step)


def _warn_changed_training_settings(saved: dict, config: GanConfig) -> None:
    changed = [
        key for key in ("batch_size", "lr_g", "lr_d", "betas", "real_label_smoothing", "seed")
        if key in saved and tuple(np.atleast_1d(saved[key])) != tuple(np.atleast_1d(getattr(config, key)))
    ]
    if changed:
        warnings.warn(
            f"resuming with changed training settings ({', '.join(changed)}); "
            "the run will not match an uninterrupted one",
            stacklevel=3,
        )


def load_generator(path: str | Path | None = None, device: str | torch.device = "cpu",
                   average: bool | None = None) -> Generator:
    """The generator of a GAN checkpoint (default ``run_dir()/gan.pt``), in eval mode on ``device``.

    ``average``: the moving average of its weights (``GanConfig.ema_decay``) rather than G as trained;
    by default the average when the run kept one, as ``train_gan`` hands back in ``generator_ema``.
    """
    path = Path(path) if path is not None else paths.run_dir() / "gan.pt"
    checkpoint = load_checkpoint(path, "gan", map_location="cpu")
    config = GanConfig.from_dict(checkpoint["config"])
    generator, _ = build_gan(config)
    state = checkpoint["models"]["generator"]
    if average is None:
        average = "generator_ema" in checkpoint["models"]
    if average:
        if "generator_ema" not in checkpoint["models"]:
            raise ValueError(f"{path} keeps no moving average of the generator (its run had ema_decay=0)")
        state = {key.removeprefix("module."): value for key, value in checkpoint["models"]["generator_ema"].items()
                 if key != "n_averaged"}
    try:
        generator.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"the generator weights in {path} do not fit its config {config}: {error}") from None
    generator.condition_scheme = config.condition  # how to build its conditions: conditions.SCHEMES
    return generator.to(device).eval()
