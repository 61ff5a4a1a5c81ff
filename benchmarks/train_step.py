"""Speed of our conditional DCGAN training step against a plain reference DCGAN step.

The reference is the PyTorch DCGAN tutorial's step (unconditional, Sigmoid +
BCELoss), at the same widths. Both draw their
batches the same way (uint8 faces kept on the device, indexed and normalised
there), so the comparison is about the step itself. Rounds alternate between
the two (and swap order every round) so machine load hits both alike; each
reports the median images/s over its rounds.

    .venv/bin/python benchmarks/train_step.py [--rounds 7 --steps 5 --width 32]

The last line is ``RESULT cgan_step_ratio <ours / reference>``. On a GPU it
also reports our step with mixed precision / channels_last / torch.compile.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from course_utils.device import autocast_for, pick_device, set_cpu_threads
from course_utils.train_gan import FaceBatches, GanConfig, build_gan, gan_step


def reference_models(z_dim: int, width: int) -> tuple[nn.Module, nn.Module]:
    """The tutorial's 64x64 DCGAN generator and discriminator (ngf = ndf = width)."""
    generator = nn.Sequential(
        nn.ConvTranspose2d(z_dim, width * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 8), nn.ReLU(True),
        nn.ConvTranspose2d(width * 8, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(True),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 4, width * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 8), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )
    return generator, discriminator


def reference_step_fn(batches: FaceBatches, config: GanConfig, device: torch.device) -> Callable[[int], None]:
    """One tutorial DCGAN iteration per call."""
    net_g, net_d = (m.to(device) for m in reference_models(config.z_dim, config.width))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=config.lr_d, betas=config.betas)
    criterion = nn.BCELoss()

    def step(index: int) -> None:
        real, _condition, z = batches.next(index)
        net_d.zero_grad()
        output = net_d(real).view(-1)
        error_real = criterion(output, torch.full_like(output, 1.0))
        error_real.backward()
        fake = net_g(z[:, :, None, None])
        output = net_d(fake.detach()).view(-1)
        error_fake = criterion(output, torch.zeros_like(output))
        error_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        output = net_d(fake).view(-1)
        error_g = criterion(output, torch.ones_like(output))
        error_g.backward()
        opt_g.step()

    return step


def our_step_fn(
    batches: FaceBatches, config: GanConfig, device: torch.device, amp: bool, channels_last: bool,
    compile_models: bool = False,
) -> Callable[[int], None]:
    """One iteration of the course's training loop body (the same code train_gan runs)."""
    generator, discriminator = build_gan(config)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    autocast = autocast_for(device, amp)
    train_g = torch.compile(generator) if compile_models else generator
    train_d = torch.compile(discriminator) if compile_models else discriminator

    def step(index: int) -> None:
        real, condition, z = batches.next(index)
        with autocast:  # as in train_gan: mixed precision wraps the plain step from outside
            gan_step(train_g, train_d, opt_g, opt_d, real, condition, z, real_target=config.real_label_smoothing)

    return step


def interleaved_rates(
    steps: dict[str, Callable[[int], None]], batch_size: int, rounds: int, steps_per_round: int,
    warmup: int, device: torch.device,
) -> dict[str, float]:
    """Median images/s of each step function, timed in alternating rounds."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for step in steps.values():
        for index in range(warmup):
            step(index)
    sync()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            for index in range(steps_per_round):
                steps[name](warmup + round_index * steps_per_round + index)
            sync()
            rates[name].append(steps_per_round * batch_size / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--images", type=int, default=2048, help="size of the random uint8 dataset")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant on GPU")
    args = parser.parse_args()

    set_cpu_threads(args.threads)
    torch.manual_seed(0)
    device = pick_device(args.device)
    config = GanConfig(width=args.width, batch_size=args.batch_size, image_size=64)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 64, 64, 3), dtype=np.uint8)
    labels = rng.integers(0, config.n_classes, size=args.images)
    print(f"device {device}, threads {torch.get_num_threads()}, width {args.width}, batch {args.batch_size}, "
          f"torch {torch.__version__}")

    def batches(channels_last: bool) -> FaceBatches:
        return FaceBatches.for_config(images, labels, config, device, channels_last=channels_last)

    contenders = {
        "ours": our_step_fn(batches(False), config, device, amp=False, channels_last=False),
        "reference": reference_step_fn(batches(False), config, device),
    }
    if device.type == "cpu":  # what train_gan runs on a CPU: the same step, channels-last
        contenders["ours channels_last"] = our_step_fn(batches(True), config, device, amp=False, channels_last=True)
    rates = interleaved_rates(contenders, args.batch_size, args.rounds, args.steps, args.warmup, device)
    for name, rate in rates.items():
        print(f"{name:>10}: {rate:8.1f} images/s (fp32)")

    if device.type == "cuda":
        variants = {
            "ours amp": our_step_fn(batches(False), config, device, amp=True, channels_last=False),
            "ours channels_last": our_step_fn(batches(True), config, device, amp=False, channels_last=True),
            "ours amp+channels_last": our_step_fn(batches(True), config, device, amp=True, channels_last=True),
        }
        if not args.no_compile:
            variants["ours amp+channels_last+compile"] = our_step_fn(
                batches(True), config, device, amp=True, channels_last=True, compile_models=True)
        gpu_rates = interleaved_rates(variants, args.batch_size, args.rounds, args.steps * 4,
                                      max(args.warmup, 10), device)
        for name, rate in gpu_rates.items():
            print(f"{name:>32}: {rate:8.1f} images/s (dataset on device)")

    if "ours channels_last" in rates:
        print(f"RESULT cgan_step_ratio_as_trained {rates['ours channels_last'] / rates['reference']:.3f}")
    print(f"RESULT cgan_step_ratio {rates['ours'] / rates['reference']:.3f}")


if __name__ == "__main__":
    main()
