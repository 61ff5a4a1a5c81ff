"""What the GAN and encoder trainers share: seeding, configs, module modes, and the run around a step.

A trainer (``train_gan``, ``train_encoder``) is a plain training step wrapped
by the pieces below, in this order:

* :func:`start_run` picks the device, seeds everything and fixes CPU threads;
* :func:`resume_run` reloads models, optimizers and RNG states from a checkpoint;
* :func:`save_run` writes them back (rank 0 only);
* :class:`LogWindow` averages the step's statistics between log lines;
* :func:`finish_run` makes every rank of a multi-GPU run end with rank 0's model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import paths
from .conditions import check_scheme, condition_size
from .presets import DEFAULT
from .checkpoints import capture_rng_state, check_config, load_checkpoint, restore_rng_state, save_checkpoint
from .device import autocast_for, pick_device, resolve_channels_last, set_cpu_threads
from .distributed import (
    DistributedContext,
    assert_replicas_match,
    barrier,
    device_for,
    sync_buffers_from_main,
)


# ---------------------------------------------------------------- reproducibility

def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; with ``deterministic``, CPU runs repeat bit for bit."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # Notebook outputs are compared by nbval on re-run, so CPU runs must repeat bit for bit.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for the noise of one step on one rank."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


# ---------------------------------------------------------------- configs

def setting(default, meaning: str):
    """A config field with its meaning, which the command line's --help shows."""
    return dataclasses.field(default=default, metadata={"help": meaning})


@dataclass
class RunConfig:
    """The settings every training run has; its defaults are the ``course-cpu`` preset's.

    ``n_classes`` and ``image_size`` describe the data: ``run_configs.gan_config(faces)``
    takes them from the face cache, ``EncoderConfig.for_generator`` from the generator.
    GanConfig and EncoderConfig add their own settings. Stored inside checkpoints.
    """

    z_dim: int = setting(100, "length of the noise vector z")
    n_classes: int = setting(2, "length of the age condition (the number of age groups)")
    image_size: int = setting(64, "side of the square faces, in pixels")
    width: int = setting(DEFAULT.gan_width, "base channel width of the model(s)")
    batch_size: int = setting(DEFAULT.gan_batch, "images per step on each process")
    steps: int = setting(DEFAULT.gan_steps, "train until this step (the presets table has every run's length)")
    checkpoint_every: int = setting(500, "write a resumable checkpoint every this many steps")
    log_every: int = setting(10, "average the losses over this many steps per log row")
    seed: int = setting(0, "seed of the weights, the batch order and the noise")
    amp: bool = setting(True, "bf16 autocast on CUDA (fp32 on GPUs without bf16); ignored off CUDA")
    channels_last: bool | None = setting(None, "channels-last memory; unset: on CUDA and the CPU, not on MPS")
    compile: bool = setting(False, "torch.compile the models (a GPU fast path)")
    threads: int | None = setting(None, "CPU threads; unset keeps torch's default for this machine")
    condition: str = setting("groups", "how the age is coded: the cache's one-hot groups (chapters 2-5), "
                             "Age-cGAN's six groups or the thermometer code of the age (chapter 6)")

    def __post_init__(self):
        check_scheme(self.condition)
        if self.condition != "groups" and self.n_classes != condition_size(self.condition):
            raise ValueError(f"the {self.condition!r} condition has {condition_size(self.condition)} dimensions, "
                             f"but n_classes={self.n_classes}")
        self._require_at_least_one("z_dim", "n_classes", "image_size", "width", "batch_size", "steps",
                                   "checkpoint_every", "log_every")
        if self.threads is not None:
            self._require_at_least_one("threads")

    def to_dict(self) -> dict:
        """Plain values only, as stored in checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Rebuild a config from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def _require_at_least_one(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be at least 1, got {getattr(self, name)}")


# ---------------------------------------------------------------- module modes

def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU if it has none)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode inside the block (BatchNorm uses running stats); previous modes after."""
    previous = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, was_training in zip(modules, previous):
            module.train(was_training)


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside the block, for measuring; previous modes after."""
    with eval_mode(*modules), torch.no_grad():
        yield


@contextlib.contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """The module's parameters need no gradient inside the block; restored after.

    Gradients still flow *through* the module to its inputs, e.g. to a latent z.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    try:
        for parameter in trainable:
            parameter.requires_grad_(False)
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


# ---------------------------------------------------------------- the run around a step

@dataclass
class Run:
    """Where and how one training run happens."""

    config: RunConfig
    context: DistributedContext
    device: torch.device
    checkpoint_path: Path
    channels_last: bool
    autocast: contextlib.AbstractContextManager

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def place(self, *models: nn.Module) -> None:
        """Move models (in place) to the run's device and memory layout."""
        for model in models:
            model.to(self.device, memory_format=self.memory_format)


def start_run(config, run_dir, filename: str, device=None, context=None) -> Run:
    """Pick the device (each rank its own GPU), seed everything, fix the CPU threads."""
    context = context or DistributedContext()
    device = device_for(context, pick_device(str(device) if device is not None else None))
    seed_everything(config.seed, deterministic=device.type == "cpu")
    set_cpu_threads(config.threads)
    run_dir = Path(run_dir) if run_dir is not None else paths.run_dir()
    return Run(config, context, device, run_dir / filename,
               resolve_channels_last(config.channels_last, device), autocast_for(device, config.amp))


def resume_run(run: Run, kind: str, model_keys, models: dict, optimizers: dict) -> dict | None:
    """Load an existing checkpoint into ``models`` and ``optimizers``; None when there is none.

    Returns the checkpoint, whose "step", "history" and extra entries the trainer reads.
    """
    path = run.checkpoint_path
    if not path.exists():
        return None
    checkpoint = load_checkpoint(path, kind, map_location=run.device)
    saved = {"condition": "groups", **checkpoint["config"]}  # checkpoints older than the schemes are "groups"
    check_config(saved, run.config.to_dict(), (*model_keys, "condition"), f"{kind} checkpoint {path}")
    for name, model in models.items():
        model.load_state_dict(checkpoint["models"][name])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(checkpoint["optimizers"][name])
    restore_rng_state(checkpoint["rng"])
    return checkpoint


def save_run(run: Run, kind: str, step: int, models: dict, optimizers: dict, history: pd.DataFrame,
             **extra) -> None:
    """Write models, optimizers, RNG states and the history (rank 0 only)."""
    if not run.context.is_main:
        return
    save_checkpoint(
        {
            "kind": kind,
            "config": run.config.to_dict(),
            "models": {name: model.state_dict() for name, model in models.items()},
            "optimizers": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
            "step": step,
            "rng": capture_rng_state(),
            "history": history.to_dict("list"),
            "world_size": run.context.world_size,
            **extra,
        },
        run.checkpoint_path,
    )


def history_rows(checkpoint: dict | None) -> list[dict]:
    """The history of a resumed checkpoint as rows (none for a fresh run)."""
    return [] if checkpoint is None else pd.DataFrame(checkpoint["history"]).to_dict("records")


class LogWindow:
    """The step statistics since the last log line, and the images per second over them."""

    def __init__(self, step: int, images_per_step: int):
        self.images_per_step = images_per_step
        self._restart(step)

    def _restart(self, step: int) -> None:
        self.stats: list[torch.Tensor] = []
        self.start, self.start_step = time.perf_counter(), step

    def add(self, stats: torch.Tensor) -> None:
        self.stats.append(stats)

    def close(self, step: int) -> tuple[list[float], float]:
        """(mean of each statistic, images/s) since the last close; one device sync per call."""
        means = torch.stack(self.stats).mean(0).tolist()
        elapsed = time.perf_counter() - self.start
        rate = (step - self.start_step) * self.images_per_step / max(elapsed, 1e-9)
        self._restart(step)
        return means, rate


def finish_run(run: Run, **models: nn.Module) -> None:
    """Meet at a barrier; in a multi-process run give every rank rank 0's buffers and check the replicas.

    Each rank's last forward pass updated BatchNorm running statistics with its own
    batch; adopting rank 0's (the ones in the checkpoint) makes every rank end with
    the same model.
    """
    barrier(run.context)
    if run.context.is_distributed:
        for name, model in models.items():
            sync_buffers_from_main(model, run.context)
            assert_replicas_match(model, run.context, name)


def compiled(module: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(module)`` when enabled (the GPU fast path), else the module itself."""
    return torch.compile(module) if enabled else module
