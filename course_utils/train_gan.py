"""Training the conditional DCGAN: one step, the loop, samples and resumable checkpoints.

Randomness is arranged so that a run stopped and resumed ends with exactly
the weights of a run that went straight through (on the CPU, same settings):

* the batch order comes from :class:`ShardedPermutation`, whose state is saved;
* the noise of step ``s`` on rank ``r`` comes from a generator re-seeded with
  ``(seed, r, s)``, so no rank has to save or restore a random stream;
* models, Adam moments, BatchNorm running statistics, the fixed sample noise,
  the loss history and the global RNG states all go into the checkpoint.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import save_image
from tqdm.auto import tqdm

from . import paths
from .checkpoints import (
    capture_rng_state,
    check_config,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .conditioning import one_hot
from .device import (
    DeviceDataset,
    Precision,
    pick_device,
    precision_for,
    resolve_channels_last,
    set_cpu_threads,
)
from .distributed import (
    DistributedContext,
    ShardedPermutation,
    assert_replicas_match,
    barrier,
    device_for,
    sync_buffers_from_main,
    unwrap,
    wrap_ddp,
)
from .modes import frozen_parameters
from .run_config import RunConfig
from .models import Discriminator, Generator
from .seeding import seed_everything

MODEL_KEYS = ("z_dim", "n_classes", "image_size", "width")
STAT_NAMES = ("loss_d", "loss_g", "d_real", "d_fake")


@dataclass
class GanConfig(RunConfig):
    """Everything that defines a GAN training run (saved in its checkpoint)."""

    z_dim: int = 100
    n_classes: int = 2
    image_size: int = 64
    width: int = 32
    batch_size: int = 64
    steps: int = 1000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_label_smoothing: float = 0.9  # one-sided: real targets 0.9, fake targets 0
    sample_every: int = 100
    checkpoint_every: int = 500
    log_every: int = 10
    n_sample_noise: int = 8  # sample grid: this many z, each drawn once per age group
    seed: int = 0
    amp: bool = True  # mixed precision on CUDA; ignored on the CPU
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False  # torch.compile the models (GPU fast path)
    threads: int | None = None  # CPU threads; None keeps torch's (fixed per machine) default
    sync_batchnorm: bool = False  # multi-GPU only (NCCL)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self._require_at_least_one(*("steps", "batch_size", "sample_every", "checkpoint_every", "log_every"))
        if not 0 < self.real_label_smoothing <= 1:
            raise ValueError(f"real_label_smoothing must be in (0, 1], got {self.real_label_smoothing}")


@dataclass
class GanResult:
    """What :func:`train_gan` hands back: models on the CPU in eval mode, and the record."""

    generator: Generator
    discriminator: Discriminator
    history: pd.DataFrame
    checkpoint_path: Path
    samples_dir: Path
    steps: int


def build_gan(config: GanConfig) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator of the configured sizes."""
    generator = Generator(config.z_dim, config.n_classes, config.image_size, config.width)
    discriminator = Discriminator(config.n_classes, config.image_size, config.width)
    return generator, discriminator


def gan_train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    condition: torch.Tensor,
    z: torch.Tensor,
    *,
    real_target: float = 0.9,
    precision: Precision | None = None,
    discriminator_for_generator: nn.Module | None = None,
) -> torch.Tensor:
    """One conditional DCGAN update of D then G; returns (loss_d, loss_g, d_real, d_fake), detached.

    ``d_real``/``d_fake`` are D's mean probabilities on the real and generated
    batch. ``discriminator_for_generator`` is the plain D inside a DDP wrapper:
    the generator's step must not involve D's gradient synchronisation.
    """
    precision = precision or precision_for(real.device, amp=False)
    scaler = precision.scaler
    with precision.autocast():
        fake = generator(z, condition)
        # Two separate D passes (all-real, all-fake) keep BatchNorm statistics per kind of batch.
        logits_real = discriminator(real, condition)
        logits_fake = discriminator(fake.detach(), condition)
        loss_d = F.binary_cross_entropy_with_logits(
            logits_real, torch.full_like(logits_real, real_target)
        ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    opt_d.zero_grad(set_to_none=True)
    scaler.scale(loss_d).backward()
    scaler.step(opt_d)

    plain_discriminator = discriminator_for_generator or discriminator
    # Only G learns here: skipping D's weight gradients saves about a third of its backward pass.
    with frozen_parameters(plain_discriminator):
        with precision.autocast():
            logits_g = plain_discriminator(fake, condition)
            loss_g = F.binary_cross_entropy_with_logits(logits_g, torch.ones_like(logits_g))
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(opt_g)
    scaler.update()
    with torch.no_grad():
        return torch.stack(
            [loss_d, loss_g, torch.sigmoid(logits_real).mean(), torch.sigmoid(logits_fake).mean()]
        ).float()


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for the noise of one step on one rank."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class GanBatches:
    """The training loop's inputs for each step: real faces, their conditions, and noise."""

    def __init__(
        self,
        images_uint8,
        labels,
        config: GanConfig,
        device: torch.device,
        context: DistributedContext | None = None,
        channels_last: bool = False,
    ):
        context = context or DistributedContext()
        self.config, self.device, self.rank = config, device, context.rank
        self.data = DeviceDataset(images_uint8, labels, config.n_classes, device, channels_last)
        side = self.data.images.shape[1]
        if tuple(self.data.images.shape[1:3]) != (config.image_size, config.image_size):
            raise ValueError(
                f"images are {side}x{self.data.images.shape[2]}, but the config says image_size={config.image_size}"
            )
        self.sampler = ShardedPermutation(
            len(self.data), config.batch_size, config.seed, context.rank, context.world_size,
            device=self.data.images.device,
        )
        self.noise = torch.Generator(device=device)

    def next(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real images, one-hot conditions, noise z) for ``step``."""
        real, condition = self.data.batch(self.sampler.next_indices())
        self.noise.manual_seed(step_seed(self.config.seed, self.rank, step))
        z = torch.randn(real.shape[0], self.config.z_dim, generator=self.noise, device=self.device)
        return real, condition, z


def fixed_sample_inputs(config: GanConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and conditions of the sample grids: the same z in every age group (row)."""
    noise = torch.Generator().manual_seed(config.seed + 1)
    z = torch.randn(config.n_sample_noise, config.z_dim, generator=noise)
    z = z.repeat(config.n_classes, 1)
    labels = torch.arange(config.n_classes).repeat_interleave(config.n_sample_noise)
    return z, one_hot(labels, config.n_classes)


@torch.no_grad()
def render_samples(
    generator: nn.Module, z: torch.Tensor, condition: torch.Tensor, precision: Precision | None = None
) -> torch.Tensor:
    """Generator output for fixed inputs, in eval mode, as float32 CPU images in [-1, 1]."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        context = precision.autocast() if precision else contextlib.nullcontext()
        with context:
            images = generator(z.to(device), condition.to(device))
    finally:
        generator.train(was_training)
    return images.float().cpu()


def _compiled(module: nn.Module, enabled: bool) -> nn.Module:
    return torch.compile(module) if enabled else module


def _history_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["step", *STAT_NAMES, "images_per_s"])


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
) -> GanResult:
    """Train the conditional DCGAN on uint8 faces (N, S, S, 3) with integer age labels (N,).

    Writes ``run_dir/gan.pt`` (every ``checkpoint_every`` steps and at the end)
    and sample grids ``run_dir/gan_samples/step_XXXXXX.png`` (rows are age
    groups, columns share z). With ``resume=True`` an existing checkpoint is
    continued up to ``config.steps``; without one, training starts afresh.
    ``sample_callback(step, images)`` receives each sample batch (e.g. for a
    live notebook view). ``context`` comes from :func:`init_distributed` in a
    torchrun launch; by default the run is single-process.
    """
    config = config or GanConfig()
    context = context or DistributedContext()
    device = device_for(context, pick_device(str(device) if device is not None else None))
    seed_everything(config.seed, deterministic=device.type == "cpu")
    set_cpu_threads(config.threads)
    run_dir = Path(run_dir) if run_dir is not None else paths.run_dir()
    checkpoint_path, samples_dir = run_dir / "gan.pt", run_dir / "gan_samples"
    channels_last = resolve_channels_last(config.channels_last, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    generator, discriminator = build_gan(config)
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    precision = precision_for(device, config.amp)
    batches = GanBatches(images_uint8, labels, config, device, context, channels_last)
    fixed_z, fixed_condition = fixed_sample_inputs(config)
    history: list[dict] = []
    step = 0

    if resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, "gan", map_location=device)
        check_config(checkpoint["config"], config.to_dict(), MODEL_KEYS, f"GAN checkpoint {checkpoint_path}")
        _warn_changed_training_settings(checkpoint["config"], config)
        generator.load_state_dict(checkpoint["models"]["generator"])
        discriminator.load_state_dict(checkpoint["models"]["discriminator"])
        opt_g.load_state_dict(checkpoint["optimizers"]["generator"])
        opt_d.load_state_dict(checkpoint["optimizers"]["discriminator"])
        if precision.scaler.is_enabled() and "scaler" in checkpoint:
            precision.scaler.load_state_dict(checkpoint["scaler"])
        batches.sampler.load_state_dict(checkpoint["sampler"])
        fixed_z, fixed_condition = checkpoint["fixed_noise"]["z"].cpu(), checkpoint["fixed_noise"]["condition"].cpu()
        restore_rng_state(checkpoint["rng"])
        history = pd.DataFrame(checkpoint["history"]).to_dict("records")
        step = int(checkpoint["step"])

    def save(at_step: int) -> None:
        if context.is_main:
            save_checkpoint(
                {
                    "kind": "gan",
                    "config": config.to_dict(),
                    "models": {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()},
                    "optimizers": {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
                    "scaler": precision.scaler.state_dict(),
                    "step": at_step,
                    "rng": capture_rng_state(),
                    "sampler": batches.sampler.state_dict(),
                    "fixed_noise": {"z": fixed_z, "condition": fixed_condition},
                    "history": _history_frame(history).to_dict("list"),
                    "world_size": context.world_size,
                },
                checkpoint_path,
            )

    def sample(at_step: int) -> None:
        if context.is_main:
            images = render_samples(generator, fixed_z, fixed_condition, precision)
            samples_dir.mkdir(parents=True, exist_ok=True)
            save_image(images, samples_dir / f"step_{at_step:06d}.png", nrow=config.n_sample_noise,
                       normalize=True, value_range=(-1, 1))
            if sample_callback is not None:
                sample_callback(at_step, images)

    # G runs forward once per step, so its buffers may be broadcast from rank 0 as usual.
    # D runs forward twice (real, then fake) before one backward; DDP's default buffer
    # broadcast would overwrite BatchNorm buffers in place between those passes and break
    # autograd. We keep the all-real / all-fake batches (DCGAN practice: one mixed batch
    # would change what D's BatchNorm normalises) and turn D's buffer broadcast off
    # instead: each rank keeps its own D running statistics, which training never uses.
    # SyncBatchNorm swaps the BatchNorm layers in place and keeps the same parameter
    # objects, so the optimizers made above still hold the right tensors.
    sync_batchnorm = config.sync_batchnorm and context.is_distributed
    train_generator = wrap_ddp(_compiled(generator, config.compile), context, broadcast_buffers=True,
                               sync_batchnorm=sync_batchnorm)
    train_discriminator = wrap_ddp(_compiled(discriminator, config.compile), context,
                                   broadcast_buffers=False, sync_batchnorm=sync_batchnorm)
    plain_discriminator = (
        train_discriminator.module
        if isinstance(train_discriminator, nn.parallel.DistributedDataParallel)
        else train_discriminator
    )

    bar = tqdm(total=config.steps, initial=step, disable=not (progress and context.is_main),
               desc="GAN", unit="step")
    window: list[torch.Tensor] = []
    window_start, window_start_step = time.perf_counter(), step
    generator.train()
    discriminator.train()
    while step < config.steps:
        real, condition, z = batches.next(step)
        window.append(
            gan_train_step(train_generator, train_discriminator, opt_g, opt_d, real, condition, z,
                           real_target=config.real_label_smoothing, precision=precision,
                           discriminator_for_generator=plain_discriminator)
        )
        step += 1
        last = step == config.steps
        if step % config.log_every == 0 or last:
            # One device->host sync per log interval, not per step.
            means = torch.stack(window).mean(0).tolist()
            elapsed = time.perf_counter() - window_start
            rate = (step - window_start_step) * config.batch_size * context.world_size / max(elapsed, 1e-9)
            row = {"step": step, **dict(zip(STAT_NAMES, means)), "images_per_s": rate}
            history.append(row)
            bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}",
                            img_s=f"{rate:.0f}")
            bar.update(step - bar.n)
            window, window_start, window_start_step = [], time.perf_counter(), step
        if step % config.sample_every == 0 or last:
            sample(step)
        if step % config.checkpoint_every == 0 or last:
            save(step)
    bar.close()
    barrier(context)
    if context.is_distributed:
        # Each rank's last forward updated BatchNorm running statistics with its own batch;
        # adopt rank 0's (the ones in the checkpoint) so every rank ends with the same model.
        sync_buffers_from_main(generator, context)
        sync_buffers_from_main(discriminator, context)
        assert_replicas_match(generator, context, "generator")

    generator = unwrap(generator).to("cpu", memory_format=torch.contiguous_format).eval()
    discriminator = unwrap(discriminator).to("cpu", memory_format=torch.contiguous_format).eval()
    return GanResult(generator, discriminator, _history_frame(history), checkpoint_path, samples_dir, step)


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


def load_generator(path: str | Path | None = None, device: str | torch.device = "cpu") -> Generator:
    """The generator of a GAN checkpoint (default ``run_dir()/gan.pt``), in eval mode on ``device``."""
    path = Path(path) if path is not None else paths.run_dir() / "gan.pt"
    checkpoint = load_checkpoint(path, "gan", map_location="cpu")
    config = GanConfig.from_dict(checkpoint["config"])
    generator, _ = build_gan(config)
    try:
        generator.load_state_dict(checkpoint["models"]["generator"])
    except RuntimeError as error:
        raise ValueError(f"the generator weights in {path} do not fit its config {config}: {error}") from None
    return generator.to(device).eval()
