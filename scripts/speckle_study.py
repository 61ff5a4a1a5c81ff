"""What makes the course generator speckle, and what cures it: one training variant per run.

    .venv/bin/python scripts/speckle_study.py --home /path/to/home --variant baseline --steps 12000
    .venv/bin/python scripts/speckle_study.py --home /path/to/home --report
    .venv/bin/python scripts/speckle_study.py --home /path/to/home --refinement

Each variant trains the chapter 2 GAN on mini-wiki (the course's data, split and settings) with
one change, and every ``--eval-every`` steps measures on held-out faces:

* speckle: generated faces' high-frequency energy over that of real held-out faces (1.0 = as crisp);
* conditioning accuracy and flip rate, judged by chapter 3's classifier;
* both for G as trained and, where the variant keeps one, for the moving average of G's weights.

Rows go to ``<home>/speckle_study/results.csv``; a killed run resumes from its last checkpoint.
``--report`` prints the table and plots speckle and conditioning against steps. ``--refinement``
measures chapter 5's side of it with the shipped models: does refining z push it off the generator's
manifold (speckled redraws), and how much does the prior on ||z|| hold it there?
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

VARIANTS = {
    # name: (GanConfig overrides, generator upsampling)
    "baseline": ({"ema_decay": 0.999}, "transposed"),  # the course's settings, plus an EMA of G measured beside it
    "ttur": ({"lr_d": 4e-4, "lr_g": 1e-4}, "transposed"),  # two time-scale update rule (Heusel et al. 2017)
    "no_smoothing": ({"real_label_smoothing": 1.0}, "transposed"),
    "resize_conv": ({}, "resize"),  # nearest-neighbour upsampling + 3x3 conv (Odena et al. 2016)
}


class ResizeConvGenerator(nn.Module):
    """The course generator with every stride-2 transposed conv replaced by upsample + 3x3 conv."""

    def __init__(self, reference: nn.Module):
        super().__init__()
        from course_utils.models import init_dcgan_weights

        self.z_dim, self.n_classes, self.image_size = reference.z_dim, reference.n_classes, reference.image_size
        self.join = reference.join
        layers = []
        for layer in reference.net:
            if isinstance(layer, nn.ConvTranspose2d) and layer.stride == (2, 2):
                layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                           nn.Conv2d(layer.in_channels, layer.out_channels, 3, 1, 1, bias=False)]
            else:
                layers.append(layer)
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z, condition):
        return self.net(self.join(z, condition))


def measure(generator: nn.Module, classifier: nn.Module, real: torch.Tensor) -> dict:
    from course_utils.conditioning_check import conditioning_report
    from course_utils.metrics import mean_pairwise_distance, speckle_ratio
    from course_utils.tensors import one_hot

    generator = generator.eval()
    with torch.no_grad():
        z = torch.randn(512, generator.z_dim, generator=torch.Generator().manual_seed(2))
        labels = torch.arange(512) % generator.n_classes
        samples = generator(z, one_hot(labels, generator.n_classes))
    report = conditioning_report(generator, classifier, n_per_class=500)
    return {"speckle": speckle_ratio(samples, real), "accuracy": report["accuracy"],
            "flip_rate": report["flip_rate"], "diversity": mean_pairwise_distance(samples)}


def run_variant(home: Path, variant: str, steps: int, eval_every: int, threads: int) -> None:
    os.environ["FACE_AGING_HOME"] = str(home)
    from course_utils import course
    from course_utils.classifier import load_classifier
    from course_utils.tensors import to_model_range
    from course_utils.train_gan import Generator, train_gan

    overrides, upsampling = VARIANTS[variant]
    faces = course.ensure_faces(progress=False)
    train, val = faces.split()
    real = to_model_range(faces.images[val])
    study = home / "speckle_study"
    judge_path = study / "classifier.pt"
    if not judge_path.exists():
        course.train_age_classifier(faces, progress=False)
        judge_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(course.paths.run_dir() / "classifier.pt", judge_path)
    classifier = load_classifier(judge_path)
    results = study / "results.csv"
    done = pd.read_csv(results) if results.exists() else pd.DataFrame(columns=["variant", "step"])
    done_steps = set(done.loc[done["variant"] == variant, "step"])
    run_dir = study / variant
    started = time.perf_counter()
    for stop in range(eval_every, steps + 1, eval_every):
        config = course.gan_config(faces, steps=stop, threads=threads, checkpoint_every=eval_every,
                                   sample_every=eval_every, **overrides)
        generator = None
        if upsampling == "resize":
            torch.manual_seed(config.seed)
            generator = ResizeConvGenerator(Generator(config.z_dim, config.n_classes, config.image_size, config.width))
        result = train_gan(faces.images[train], faces.labels[train], config, run_dir, resume=True, progress=False,
                           generator=generator)
        if stop in done_steps:
            continue
        rows = [{"variant": variant, "step": stop, "weights": "as trained",
                 **measure(result.generator, classifier, real)}]
        if result.generator_ema is not None:
            rows.append({"variant": variant, "step": stop, "weights": "EMA",
                         **measure(result.generator_ema, classifier, real)})
        for row in rows:
            row["seconds"] = round(time.perf_counter() - started, 1)
        frame = pd.DataFrame(rows)
        frame.to_csv(results, mode="a", header=not results.exists(), index=False)
        print(frame.round(3).to_string(index=False, header=stop == eval_every), flush=True)


def report(home: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.read_csv(home / "speckle_study" / "results.csv")
    print(table.round(3).to_string(index=False))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for (variant, weights), rows in table.groupby(["variant", "weights"]):
        for ax, column in zip(axes, ("speckle", "accuracy", "flip_rate")):
            ax.plot(rows["step"], rows[column], marker="o", label=f"{variant} ({weights})")
    for ax, column in zip(axes, ("speckle (generated / real)", "conditioning accuracy", "flip rate")):
        ax.set(xlabel="GAN step", ylabel=column)
    axes[0].axhline(1.0, color="grey", ls=":")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(home / "speckle_study" / "speckle_study.png", dpi=100)
    print(f"figure: {home / 'speckle_study' / 'speckle_study.png'}")


def refinement(home: Path, weights=(0.0, 1e-3, 1e-2, 1e-1), steps: int = 100) -> None:
    """Redraws of chapter 5's 96 reported faces after refinement with each prior weight: their speckle,
    how far ||z|| strays from sqrt(z_dim), and the reconstruction error."""
    os.environ["FACE_AGING_HOME"] = str(home)
    from course_utils import course

    faces = course.ensure_faces(progress=False)
    _, val = faces.split()
    models = course.chapter_models(faces, progress=False)
    rows = course.reported_faces(val)
    photos = course.to_model_range(faces.images[rows])
    source = course.one_hot(torch.as_tensor(faces.labels[rows]), 2)
    target = course.one_hot(torch.as_tensor(course.aging_targets(faces.labels[rows], 2)), 2)
    real = course.to_model_range(faces.images[val])
    start = course.encode(models.encoder, photos)
    table = []
    for weight in weights:
        z, _ = course.refine_latent(models.generator, start, photos, source, steps=steps, prior_weight=weight)
        with torch.no_grad():
            reconstruction, redraw = models.generator(z, source), models.generator(z, target)
        table.append({"prior weight": weight, "redraw speckle": course.speckle_ratio(redraw, real),
                      "| ||z||/10 - 1 |": float((z.norm(dim=1) / 10 - 1).abs().mean()),
                      "reconstruction MSE": float((reconstruction - photos).pow(2).mean())})
    with torch.no_grad():
        encoder_only = course.speckle_ratio(models.generator(start, target), real)
    print(f"redraw speckle from the encoder's z alone (no refinement): {encoder_only:.3f}")
    print(pd.DataFrame(table).round(4).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="course home (data, cache, study runs)")
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--refinement", action="store_true", help="chapter 5: refinement and the prior on z")
    args = parser.parse_args()
    if args.report:
        report(args.home)
    elif args.refinement:
        refinement(args.home.resolve())
    elif args.variant:
        run_variant(args.home.resolve(), args.variant, args.steps, args.eval_every, args.threads)
    else:
        parser.error("give --variant or --report")


if __name__ == "__main__":
    main()
