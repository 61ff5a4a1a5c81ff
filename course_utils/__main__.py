"""Headless training from the command line (GPU machines, Colab, several GPUs).

    python -m course_utils train-gan --steps 5000 --batch-size 128
    python -m course_utils train-encoder --steps 3000
    torchrun --nproc-per-node=4 -m course_utils train-gan --steps 20000

Under torchrun (``WORLD_SIZE`` > 1) the models train with
DistributedDataParallel; rank 0 logs, renders samples and writes checkpoints.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import paths
from .distributed import barrier, init_distributed, shutdown_distributed, state_digest


def synthetic_faces(count: int, image_size: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images and labels, for smoke tests of the training machinery."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, image_size, image_size, 3), dtype=np.uint8)
    return images, rng.integers(0, n_classes, size=count)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, help="train until this step (default: the config's)")
    parser.add_argument("--batch-size", type=int, help="images per step on each process")
    parser.add_argument("--width", type=int, help="base channel width of the model(s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="dataset name (default: FACE_AGING_DATASET or mini-wiki)")
    parser.add_argument("--out", type=Path, help="run folder for checkpoints and samples (default: run_dir())")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in the run folder")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (GPU fast path)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 even on CUDA")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--threads", type=int, help="CPU threads per process")
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--digest-file", type=Path,
                        help="write each rank's final weight digest to <file>.rank<N> (replica checks)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gan = commands.add_parser("train-gan", help="train the conditional DCGAN on the face cache")
    _add_common(gan)
    gan.add_argument("--image-size", type=int, default=64, choices=(32, 64, 128))
    gan.add_argument("--z-dim", type=int, default=100)
    gan.add_argument("--sample-every", type=int)
    gan.add_argument("--sync-batchnorm", action="store_true", help="SyncBatchNorm across GPUs (NCCL only)")
    gan.add_argument("--synthetic-data", type=int, metavar="N",
                     help="train on N random images instead of the face cache (smoke tests)")

    encoder = commands.add_parser("train-encoder", help="train the encoder against a trained generator")
    _add_common(encoder)
    encoder.add_argument("--gan", type=Path, help="GAN checkpoint (default: <out>/gan.pt)")
    encoder.add_argument("--image-loss-weight", type=float)
    encoder.add_argument("--eval-every", type=int)
    return parser


def _settings(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """Config fields from the options that were given (others keep the config defaults)."""
    return {field: getattr(args, option) for option, field in names.items() if getattr(args, option) is not None}


COMMON = {"steps": "steps", "batch_size": "batch_size", "width": "width", "seed": "seed",
          "threads": "threads", "log_every": "log_every", "checkpoint_every": "checkpoint_every"}


def run_train_gan(args: argparse.Namespace, context) -> Path:
    from .train_gan import train_gan

    from .course import gan_config, split_indices
    from .device import pick_device

    # The notebooks' settings, so a headless run makes the checkpoint chapter 3 to 5 expect.
    config = gan_config(
        pick_device(args.device), image_size=args.image_size, z_dim=args.z_dim, amp=not args.no_amp,
        compile=args.compile, sync_batchnorm=args.sync_batchnorm,
        **_settings(args, {**COMMON, "sample_every": "sample_every"}),
    )
    if args.synthetic_data:
        images, labels = synthetic_faces(args.synthetic_data, args.image_size, config.n_classes, args.seed)
    else:
        from .data import load_face_cache

        # Rank 0 builds the cache (and downloads) first; the others then read it.
        if not context.is_main:
            barrier(context)
        cache = load_face_cache(dataset=args.dataset, image_size=args.image_size, progress=context.is_main)
        if context.is_main:
            barrier(context)
        train, _ = split_indices(cache)  # held-out people stay unseen, as in the notebooks
        images, labels = cache.images[train], cache.labels[train]
    out = args.out or paths.run_dir(args.dataset)
    result = train_gan(images, labels, config, out, resume=args.resume, progress=not args.no_progress,
                       device=args.device, context=context)
    _write_digest(args, context, state_digest(result.generator))
    if context.is_main:
        print(f"GAN trained to step {result.steps}; checkpoint {result.checkpoint_path}")
    return result.checkpoint_path


def run_train_encoder(args: argparse.Namespace, context) -> Path:
    from .course import encoder_config
    from .device import pick_device
    from .train_encoder import train_encoder
    from .train_gan import load_generator

    out = args.out or paths.run_dir(args.dataset)
    generator = load_generator(args.gan or out / "gan.pt")
    config = encoder_config(
        generator, pick_device(args.device), amp=not args.no_amp, compile=args.compile,
        **_settings(args, {**COMMON, "image_loss_weight": "image_loss_weight", "eval_every": "eval_every"}),
    )
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
    args = build_parser().parse_args(argv)
    device_type = args.device.split(":")[0] if args.device else None
    context = init_distributed(device_type)
    try:
        if args.command == "train-gan":
            run_train_gan(args, context)
        else:
            run_train_encoder(args, context)
    except BaseException:
        shutdown_distributed(context, wait=False)
        raise
    shutdown_distributed(context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
