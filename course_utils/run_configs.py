"""The configs of a run: the preset row for the data and the device, completed by what the data says.

The chapters, the CLI and ``scripts/`` build their GanConfig and EncoderConfig here, so a
run's length and width always come from :mod:`course_utils.presets`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import conditions, paths, presets
from .data import FaceCache
from .device import pick_device
from .models import Generator
from .train_encoder import EncoderConfig
from .train_gan import GanConfig


def current_preset(dataset: str | None = None, device: torch.device | None = None,
                   axis: bool = False) -> presets.RunPreset:
    """The preset for ``dataset`` (default: the current one) on ``device`` (default: the best one)."""
    on_gpu = (device or pick_device()).type != "cpu"
    return presets.preset(dataset or paths.dataset_name(), on_gpu, axis)


def _warn_if_slow(preset: presets.RunPreset, steps: int, what: str, dataset: str) -> None:
    """Before a long CPU run on real data, say how long it should take (an estimate)."""
    if preset.seconds_per_step is None or dataset == "mini-wiki":
        return
    minutes = steps * preset.seconds_per_step / 60
    print(f"Training the {what} on {dataset} on a CPU: {steps} steps, roughly {minutes:.0f} min "
          f"(an estimate from a 2-core CPU; a GPU is far faster). {preset.purpose}.", flush=True)


def gan_config(faces: FaceCache | None = None, device: torch.device | None = None, **overrides) -> GanConfig:
    """The course's GAN settings for ``faces`` (its age groups and image size), sized by the preset of the
    faces' dataset (without faces: the current dataset; no time estimate is printed)."""
    dataset = (faces.dataset or None) if faces is not None else None
    preset = current_preset(dataset, device)
    settings = dict(steps=preset.gan_steps, width=preset.gan_width, batch_size=preset.gan_batch)
    if faces is not None:
        settings.update(n_classes=len(faces.age_groups), image_size=faces.images.shape[1])
    scheme = overrides.get("condition", "groups")
    if scheme != "groups":  # the age-axis schemes have their own size, whatever the cache's groups
        settings["n_classes"] = conditions.condition_size(scheme)
    config = GanConfig(**{**settings, **overrides})
    if faces is not None:
        _warn_if_slow(preset, config.steps, "GAN", dataset or paths.dataset_name())
    return config


def encoder_config(generator: Generator, device: torch.device | None = None, dataset: str | None = None,
                   **overrides) -> EncoderConfig:
    """The course's encoder settings for ``generator``'s z, groups and size, sized by the preset of
    ``dataset`` (default: the current one)."""
    dataset = dataset or paths.dataset_name()
    preset = current_preset(dataset, device)
    config = EncoderConfig.for_generator(generator, **{**encoder_settings(preset), **overrides})
    _warn_if_slow(preset, config.steps, "encoder", dataset)
    return config


def encoder_settings(preset: presets.RunPreset) -> dict:
    """The EncoderConfig fields a preset sets."""
    return dict(steps=preset.encoder_steps, width=preset.encoder_width, hidden=preset.encoder_hidden,
                batch_size=preset.encoder_batch, lr=preset.encoder_lr, eval_pairs=preset.encoder_eval_pairs)


def axis_run_dir(scheme: str, dataset: str | None = None) -> Path:
    """Where chapter 6 (and ``train-gan --condition``) keep the GAN and encoder of one condition scheme."""
    return paths.run_dir(dataset) / f"age_axis_{conditions.check_scheme(scheme)}"


def axis_gan_config(scheme: str, device: torch.device | None = None, **overrides) -> GanConfig:
    """Chapter 6's GAN settings for a condition scheme, from the ``axis-*`` preset."""
    preset = current_preset(device=device, axis=True)
    return GanConfig(**{"condition": scheme, "n_classes": conditions.condition_size(scheme),
                        "image_size": preset.image_size, "width": preset.gan_width, "batch_size": preset.gan_batch,
                        "steps": preset.gan_steps, "sample_every": preset.gan_steps, "threads": preset.threads,
                        **overrides})


def axis_encoder_config(generator: Generator, device: torch.device | None = None, **overrides) -> EncoderConfig:
    """Chapter 6's encoder settings for ``generator`` (its z, scheme, size), from the ``axis-*`` preset."""
    preset = current_preset(device=device, axis=True)
    return EncoderConfig.for_generator(generator, **{"width": preset.encoder_width, "steps": preset.encoder_steps,
                                                     "threads": preset.threads, **overrides})


def mini_wiki_thresholds_apply() -> bool:
    """Whether a checkpoint cell also asserts the thresholds measured on the mini-wiki course run.

    Every dataset gets the checks that hold for any working run (finite losses, no mode
    collapse, better than a trivial baseline). The measured thresholds hold for mini-wiki
    only: not on real data, and not for a ``FACE_AGING_RUN_SIZE=tiny`` smoke run.
    """
    dataset = paths.dataset_name()
    applies = dataset == "mini-wiki" and not presets.is_smoke_run()
    if not applies:
        print(f"checks: only those that hold on every dataset ({dataset}, {current_preset().purpose}); "
              "the mini-wiki thresholds do not apply")
    return applies
