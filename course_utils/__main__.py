"""Headless training from the command line (GPU machines, Colab, several GPUs).

    python -m course_utils train-gan --steps 5000 --batch-size 128

Every setting of GanConfig / EncoderConfig is an option (``--batch-size``,
``--no-amp``, ``--betas 0.5 0.999``, ...); ``--help`` shows what each means and
the default the presets table gives this dataset and device. The number of age
groups and the image size come from the data.
    python -m course_utils train-encoder --steps 3000
    torchrun --nproc-per-node=4 -m course_utils train-gan --steps 20000

Under torchrun (``WORLD_SIZE`` > 1) the models train with
DistributedDataParallel; rank 0 logs, renders samples and writes checkpoints.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from . import paths
from .conditions import SCHEMES
from .distributed import barrier, init_distributed, shutdown_distributed, state_digest


def synthetic_faces(count: int, image_size: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images and labels, for smoke tests of the training machinery."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, image_size, image_size, 3), dtype=np.uint8)
    return images, rng.integers(0, n_classes, size=count)


# Fields that come from the data (the face cache, or the generator), not from options.
FROM_DATA = {"train-gan": ("n_classes",), "train-encoder": ("z_dim", "n_classes", "image_size", "condition")}


def _add_config_options(parser: argparse.ArgumentParser, config_class, skip: tuple[str, ...], defaults: dict) -> None:
    """One ``--field-name`` option per config field: its meaning, and the default this machine will use."""
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        option, kind = "--" + field.name.replace("_", "-"), str(field.type)
        default = defaults[field.name]
        shown = f"{field.metadata['help']} (default here: {'unset' if default is None else default})"
        if field.name == "condition":
            parser.add_argument(option, choices=SCHEMES, default=None, help=shown)
        elif kind.startswith("bool"):
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=shown)
        elif kind.startswith("tuple"):
            parser.add_argument(option, type=float, nargs=2, default=None, help=shown)
        else:
            parser.add_argument(option, type=float if kind.startswith("float") else int, default=None, help=shown)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=paths.KNOWN_DATASETS,
                        help="dataset name (default: FACE_AGING_DATASET or mini-wiki)")
    parser.add_argument("--out", type=Path, help="run folder for checkpoints and samples (default: run_dir())")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in the run folder")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--digest-file", type=Path,
                        help="write each rank's final weight digest to <file>.rank<N> (replica checks)")


def build_parser() -> argparse.ArgumentParser:
    from .device import pick_device
    from .presets import PRESETS, preset_name
    from .run_configs import encoder_settings, gan_config
    from .train_encoder import EncoderConfig
    from .train_gan import GanConfig

    # The defaults shown are those of the current dataset (FACE_AGING_DATASET) on the best device here.
    device = pick_device().type
    name = preset_name(paths.dataset_name(), on_gpu=device != "cpu")
    preset = PRESETS[name]
    where = f"Defaults here: the {paths.dataset_name()} dataset on {device}, preset {name!r} ({preset.purpose})."
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gan = commands.add_parser("train-gan", help="train the conditional DCGAN on the face cache", description=where)
    _add_run_options(gan)
    _add_config_options(gan, GanConfig, FROM_DATA["train-gan"], gan_config().to_dict())
    gan.add_argument("--synthetic-data", type=int, metavar="N",
                     help="train on N random images instead of the face cache (smoke tests)")
    gan.add_argument("--synthetic-groups", type=int, default=GanConfig.n_classes, metavar="K",
                     help="age groups of the synthetic data (default: %(default)s)")

    encoder = commands.add_parser("train-encoder", help="train the encoder against a trained generator",
                                  description=where)
    _add_run_options(encoder)
    _add_config_options(encoder, EncoderConfig, FROM_DATA["train-encoder"],
                        EncoderConfig(**encoder_settings(preset)).to_dict())
    encoder.add_argument("--gan", type=Path, help="GAN checkpoint (default: <out>/gan.pt)")
    return parser


def _settings(args: argparse.Namespace, config_class) -> dict:
    """Config fields from the options that were given (others keep the dataclass defaults)."""
    names = {field.name for field in dataclasses.fields(config_class)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def _check_out(out: Path) -> Path:
    """The run folder must be a folder we can write, checked before the first step."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out {out}: cannot create the folder ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder is not writable")
    return out


def run_train_gan(args: argparse.Namespace, context) -> Path:
    from .conditions import AGE_RANGE, SIX_GROUPS, condition_for_ages
    from .run_configs import axis_run_dir, gan_config
    from .device import pick_device
    from .train_gan import GanConfig, train_gan

    if args.synthetic_data is not None and args.synthetic_data < 1:
        raise ValueError(f"--synthetic-data must be a positive number of images, got {args.synthetic_data}")
    settings = _settings(args, GanConfig)
    scheme = settings.get("condition", "groups")
    # Another scheme than chapter 2's groups gets its own folder (chapter 6's), never chapter 2's gan.pt.
    out = _check_out(args.out or (paths.run_dir(args.dataset) if scheme == "groups"
                                  else axis_run_dir(scheme, args.dataset)))
    device = pick_device(args.device)
    if args.synthetic_data:
        # The notebooks' settings, so a headless run makes the checkpoint chapters 3 to 5 expect.
        groups = {"n_classes": args.synthetic_groups} if scheme == "groups" else {}  # a scheme has its own size
        config = gan_config(None, device, **groups, **settings)
        images, labels = synthetic_faces(args.synthetic_data, config.image_size, config.n_classes, config.seed)
        if scheme != "groups":  # random ages over the schemes' range, coded by the scheme
            ages = np.random.default_rng(config.seed + 1).integers(AGE_RANGE[0], AGE_RANGE[1] + 1, len(images))
            labels = condition_for_ages(ages, scheme).numpy()
    else:
        from .data import load_face_cache

        gan_config(None, device, **settings)  # bad settings fail here, before any download
        # Rank 0 builds the cache (and downloads) first; the others then read it.
        if not context.is_main:
            barrier(context)
        # The age-axis schemes train on faces of all ages (Age-cGAN's six groups), a side cache
        # that leaves chapter 1's choice of groups, which chapters 2-5 follow, untouched.
        extra = {} if scheme == "groups" else {"age_groups": SIX_GROUPS, "remember": False}
        cache = load_face_cache(dataset=args.dataset, image_size=settings.get("image_size", GanConfig.image_size),
                                progress=context.is_main, **extra)
        if context.is_main:
            barrier(context)
        config = gan_config(cache, device, **settings)  # age groups and size from the cache
        train, _ = cache.split()  # held-out people stay unseen, as in the notebooks
        images, labels = cache.images[train], cache.labels[train]
        if scheme != "groups":
            labels = condition_for_ages(cache.table["age"].to_numpy()[train], scheme).numpy()
    result = train_gan(images, labels, config, out, resume=args.resume, progress=not args.no_progress,
                       device=args.device, context=context)
    _write_digest(args, context, state_digest(result.generator))
    if context.is_main:
        print(f"GAN trained to step {result.steps}; checkpoint {result.checkpoint_path}")
    return result.checkpoint_path


def run_train_encoder(args: argparse.Namespace, context) -> Path:
    from .run_configs import encoder_config
    from .device import pick_device
    from .train_encoder import EncoderConfig, train_encoder
    from .train_gan import load_generator

    out = _check_out(args.out or paths.run_dir(args.dataset))
    generator = load_generator(args.gan or out / "gan.pt")
    config = encoder_config(generator, pick_device(args.device), dataset=args.dataset,
                            **_settings(args, EncoderConfig))
    result = train_encoder(generator, config, out, resume=args.resume, progress=not args.no_progress,
                           device=args.device, context=context)
    _write_digest(args, context, state_digest(result.encoder))
    if context.is_main:
        print(f"encoder trained; unexplained variance {result.unexplained_variance:.3f}; "
              f"checkpoint {result.checkpoint_path}")
    return result.checkpoint_path


def _write_digest(args: argparse.Namespace, context, digest: str) -> None:
    if args.digest_file is not None:
        path = args.digest_file.with_name(f"{args.digest_file.name}.rank{context.rank}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m course_utils`` and the ``course-utils`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    device_type = args.device.split(":")[0] if args.device else None
    context = init_distributed(device_type)
    try:
        try:
            if args.command == "train-gan":
                run_train_gan(args, context)
            else:
                run_train_encoder(args, context)
        except ValueError as error:  # bad options or data: a clear message, not a traceback
            shutdown_distributed(context, wait=False)
            parser.error(str(error))
    except BaseException:
        shutdown_distributed(context, wait=False)
        raise
    shutdown_distributed(context)
    if context.is_distributed:
        # The run is done and written. Under load, gloo's teardown at interpreter exit can abort a rank
        # ("terminate called without an active exception"), which torchrun reports as a failed run; a
        # worker that has left its process group skips that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
