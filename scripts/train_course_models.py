"""Train the course's long-trained models and ship them, with model cards, in course_utils/pretrained/.

    nohup .venv/bin/python scripts/train_course_models.py --home /somewhere/models_home > train.log 2>&1 &

One run trains, in this order: chapter 3's age-group classifier, chapter 2's conditional DCGAN,
chapter 4's encoder of that generator, chapter 6's age judge in years, and chapter 6's two
generators (six groups, thermometer) with an encoder each. ``--only`` picks some of them.

Every model trains in chunks and is measured on held-out faces after each chunk. It stops when
none of its quality figures improved over the last ``window`` evaluations (the mean of the last
``window`` against the mean of the ``window`` before), or at its cap. A killed run resumes from
its last checkpoint: run the same command again. The models and their cards are written when a
stage ends; ``--size tiny`` runs everything for seconds (the unit test does), never into the package.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Schedule:
    """How one model trains: ``chunk`` steps (or epochs) between evaluations, at least ``minimum``,
    at most ``cap``; plateau when no figure moved by its tolerance over ``window`` evaluations."""

    chunk: int
    minimum: int
    cap: int
    window: int


SIZES = {
    "course": {
        # The GAN's cap is what one CPU thread trains in about two hours; its curve still falls there
        # (the card keeps it), so a longer run on a faster machine ships a better generator.
        "gan": Schedule(chunk=500, minimum=4000, cap=6500, window=3),
        "encoder": Schedule(chunk=500, minimum=4000, cap=6000, window=2),
        "classifier": Schedule(chunk=1, minimum=1, cap=30, window=1),  # one run to the cap, the best epoch kept
        "age_judge": Schedule(chunk=0, minimum=4, cap=64, window=1),  # runs of 4, 8, 16, ... epochs
        "axis_gan": Schedule(chunk=1000, minimum=6000, cap=40000, window=3),
        "axis_encoder": Schedule(chunk=500, minimum=6000, cap=12000, window=2),
    },
    "tiny": {
        "gan": Schedule(chunk=10, minimum=20, cap=30, window=1),
        "encoder": Schedule(chunk=10, minimum=20, cap=30, window=1),
        "classifier": Schedule(chunk=1, minimum=1, cap=3, window=1),
        "age_judge": Schedule(chunk=0, minimum=1, cap=2, window=1),
        "axis_gan": Schedule(chunk=10, minimum=20, cap=30, window=1),
        "axis_encoder": Schedule(chunk=10, minimum=10, cap=20, window=1),
    },
}
# The encoders' batch: the shipped ones trained on 128 pairs a step (their cards record it), twice the
# course-cpu preset's short run; tiny runs keep their preset's.
ENCODER_BATCH = {"course": 128, "tiny": None}
# How many held-out faces the GAN's ground-truth probe fits, with how many refinement steps, and how many
# renders per group the conditioning report judges.
PROBE_SIZES = {"course": {"n_faces": 96, "refine_steps": 150, "renders_per_group": 500},
               "tiny": {"n_faces": 8, "refine_steps": 5, "renders_per_group": 50}}
# What counts as still improving: figure -> (direction, smallest change that counts).
TOLERANCES = {
    "gan": {"speckle": ("down", 0.03), "accuracy": ("up", 0.01), "flip_rate": ("up", 0.01),
            "raw_edit_vs_mean_difference": ("down", 0.01)},
    "encoder": {"unexplained_variance": ("down", 0.01)},
    "classifier": {"val_balanced_acc": ("up", 0.005)},
    "age_judge": {"judge_mae": ("down", 0.1)},
    "axis_gan": {"speckle": ("down", 0.03), "years_off": ("down", 0.2), "slope": ("up", 0.02)},
    "axis_encoder": {"unexplained_variance": ("down", 0.01)},
}
GAN_SETTINGS = {"ema_decay": 0.999}  # measured by scripts/speckle_study.py
STAGES = ("classifier", "gan", "encoder", "age_judge", "axis")
AXIS_SCHEMES = ("six-groups", "thermometer")


def still_improving(curve: pd.DataFrame, tolerances: dict, window: int) -> bool:
    """Whether any figure's mean over the last ``window`` rows beats the ``window`` before by its tolerance."""
    if len(curve) < 2 * window:
        return True
    recent, before = curve.iloc[-window:], curve.iloc[-2 * window:-window]
    for column, (direction, tolerance) in tolerances.items():
        change = recent[column].mean() - before[column].mean()
        if column == "speckle":
            change /= before[column].mean()  # relative: speckle is a ratio
        if (direction == "down" and change <= -tolerance) or (direction == "up" and change >= tolerance):
            return True
    return False


def shipped_generator(result):
    """The generator a GAN run ships: the moving average of its weights where it keeps one."""
    return result.generator_ema if result.generator_ema is not None else result.generator


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version(), "system": platform.platform()}


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


class Trainer:
    """The shared state of one run: data, output folder, timing and card writing."""

    def __init__(self, home: Path, out: Path, size: str, threads: int | None):
        os.environ["FACE_AGING_HOME"] = str(home)
        if size == "tiny":
            os.environ["FACE_AGING_RUN_SIZE"] = "tiny"
        from course_utils import course, paths
        from course_utils.data.synthetic_faces import RENDERER_VERSION

        self.course, self.home, self.out, self.size, self.threads = course, home, out, size, threads
        self.schedules = SIZES[size]
        self.work = home / "course_models"
        self.work.mkdir(parents=True, exist_ok=True)
        self.renderer_version = RENDERER_VERSION
        self.dataset = paths.dataset_name()
        self.faces = course.ensure_faces(progress=False)
        self.train_idx, self.val_idx = self.faces.split()
        self.clock_path = self.work / "wall_seconds.json"
        self.clock = json.loads(self.clock_path.read_text()) if self.clock_path.exists() else {}

    # ---------------------------------------------------------------- bookkeeping
    def add_time(self, name: str, seconds: float) -> float:
        self.clock[name] = self.clock.get(name, 0.0) + seconds
        self.clock_path.write_text(json.dumps(self.clock, indent=1))
        return self.clock[name]

    def curve_path(self, name: str) -> Path:
        return self.work / f"{name}_curve.csv"

    def read_curve(self, name: str) -> pd.DataFrame:
        path = self.curve_path(name)
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    def append_curve(self, name: str, row: dict) -> pd.DataFrame:
        curve = pd.concat([self.read_curve(name), pd.DataFrame([row])], ignore_index=True)
        curve.to_csv(self.curve_path(name), index=False)
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in row.items()), flush=True)
        return curve

    def schedule_loop(self, name: str, kind: str, unit: str, train_to, measure):
        """Train ``name`` chunk by chunk (``train_to(stop)``), measuring after each, until it plateaus."""
        schedule = self.schedules[kind]
        curve = self.read_curve(name)
        stop = int(curve[unit].max()) if len(curve) else 0
        while stop < schedule.cap and (stop < schedule.minimum or still_improving(curve, TOLERANCES[kind],
                                                                                  schedule.window)):
            stop += schedule.chunk
            started = time.perf_counter()
            model = train_to(stop)
            row = {unit: stop, **measure(model)}
            row["wall_seconds"] = round(self.add_time(name, time.perf_counter() - started), 1)
            curve = self.append_curve(name, row)
        return curve, stop

    def write(self, name: str, kind: str, config: dict, model, curve: pd.DataFrame, unit: str,
              figures: dict, length: int | None = None) -> None:
        """Write ``<out>/<name>.pt`` (fp16 weights) and its model card ``<name>.json``."""
        from course_utils.checkpoints import save_checkpoint
        from course_utils.pretrained import architecture_signature, file_sha256

        half = {key: value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu()
                for key, value in model.state_dict().items()}
        model_key = {"gan": "generator", "encoder": "encoder", "classifier": "classifier", "age_judge": "judge"}[kind]
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{name}.pt"
        save_checkpoint({"kind": kind, "config": config, "models": {model_key: half}}, path)
        card = {
            "name": name, "kind": kind, "file": path.name, "sha256": file_sha256(path),
            "bytes": path.stat().st_size, "dtype": "float16",
            "data": {"dataset": self.dataset, "renderer_version": self.renderer_version,
                     "train_faces": int(len(self.train_idx)), "held_out_faces": int(len(self.val_idx)),
                     "split": "FaceCache.split (by person)"},
            "config": config, unit: int(length if length is not None else curve[unit].max()),
            "architecture": architecture_signature(model),
            "wall_seconds": round(self.clock.get(name, 0.0), 1), "machine": machine(), "commit": commit(),
            "trained_by": "scripts/train_course_models.py", "size": self.size,
            "figures": figures, "curve": curve.to_dict("records"), "curve_unit": unit,
        }
        (self.out / f"{name}.json").write_text(json.dumps(card, indent=1, default=float) + "\n")
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and its card", flush=True)

    def shipped(self, name: str) -> bool:
        return (self.out / f"{name}.json").exists() and (self.out / f"{name}.pt").exists()

    # ---------------------------------------------------------------- chapter 3's classifier
    def classifier(self) -> None:
        from course_utils.classifier import AgeClassifier, evaluate_classifier, train_classifier

        faces, course = self.faces, self.course
        tr, va = self.train_idx, self.val_idx

        def fit(epochs: int, validate: bool = False):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(course.CLASSIFIER_SEED)
                model = AgeClassifier(n_classes=len(faces.age_groups))
            held_out = (faces.images[va], faces.labels[va]) if validate else (None, None)
            return train_classifier(model, faces.images[tr], faces.labels[tr], *held_out, epochs=epochs,
                                    seed=course.CLASSIFIER_SEED, progress=False)

        # One run to the cap, scored on held-out faces after every epoch; the constant learning rate and
        # fixed seed make a run of k epochs end with exactly the weights of that run's epoch k.
        started = time.perf_counter()
        _, history = fit(self.schedules["classifier"].cap, validate=True)
        curve = history[["epoch", "val_balanced_acc", "val_acc"]]
        best = int(curve.loc[curve["val_balanced_acc"].idxmax(), "epoch"])
        model, _ = fit(best)
        self.add_time("classifier", time.perf_counter() - started)
        scores = evaluate_classifier(model, faces.images[va], faces.labels[va])
        self.write("classifier", "classifier", model.config(), model, curve, "epoch",
                   {"val_balanced_acc": scores["balanced_accuracy"], "val_acc": scores["accuracy"]}, length=best)

    # ---------------------------------------------------------------- chapter 2's GAN
    def gan(self) -> None:
        from course_utils.pretrained import load
        from course_utils.train_gan import train_gan

        faces, course = self.faces, self.course
        judge = load("classifier", self.out)
        real = self._real(self.val_idx)
        probe = GroundTruthProbe(self, **{k: v for k, v in PROBE_SIZES[self.size].items() if k != "renders_per_group"})

        def train_to(stop: int):
            config = course.gan_config(faces, steps=stop, checkpoint_every=self.schedules["gan"].chunk,
                                       sample_every=self.schedules["gan"].chunk, threads=self.threads,
                                       **GAN_SETTINGS)
            result = train_gan(faces.images[self.train_idx], faces.labels[self.train_idx], config,
                               self.work / "gan", resume=True, progress=False)
            self._gan_config = config
            return result

        def measure(result):
            from course_utils.conditioning_check import conditioning_report

            generator = shipped_generator(result)
            report = conditioning_report(generator, judge, n_per_class=PROBE_SIZES[self.size]["renders_per_group"])
            return {"speckle": self._speckle(generator, real), "accuracy": report["accuracy"],
                    "flip_rate": report["flip_rate"], **probe.measure(generator),
                    "speckle_as_trained": self._speckle(result.generator, real)}

        curve, stop = self.schedule_loop("gan", "gan", "step", train_to, measure)
        generator = shipped_generator(train_to(stop))
        last = curve.iloc[-1].to_dict()
        self.write("gan", "gan", self._gan_config.to_dict(), generator, curve, "step",
                   {key: last[key] for key in curve.columns if key not in ("step", "wall_seconds")})

    # ---------------------------------------------------------------- chapter 4's encoder
    def encoder(self) -> None:
        from course_utils.pretrained import load

        generator = load("gan", self.out)
        config, curve = self._encoder("encoder", generator, {}, self.work / "encoder")
        self.write("encoder", "encoder", config.to_dict(), self._encoder_model, curve, "step",
                   {"unexplained_variance": float(curve["unexplained_variance"].iloc[-1])})

    def _encoder(self, name: str, generator, overrides: dict, run_dir: Path):
        from course_utils.train_encoder import train_encoder

        kind = "encoder" if name == "encoder" else "axis_encoder"

        if ENCODER_BATCH[self.size] is not None:
            overrides = {"batch_size": ENCODER_BATCH[self.size], **overrides}

        def train_to(stop: int):
            config = self.course.encoder_config(generator, steps=stop, threads=self.threads,
                                                checkpoint_every=self.schedules[kind].chunk,
                                                eval_every=self.schedules[kind].chunk, **overrides)
            result = train_encoder(generator, config, run_dir, resume=True, progress=False)
            self._encoder_config, self._encoder_model = config, result.encoder
            return result

        curve, stop = self.schedule_loop(name, kind, "step", train_to,
                                         lambda result: {"unexplained_variance": result.unexplained_variance,
                                                         "r2_mean": float(np.mean(result.r2))})
        train_to(stop)
        return self._encoder_config, curve

    # ---------------------------------------------------------------- chapter 6
    def age_judge(self) -> None:
        from course_utils import age_axis

        faces, tr, va = self._axis_faces()
        ages = faces.table["age"].to_numpy()

        def fit(epochs: int):
            return age_axis.train_age_judge(faces.images[tr], ages[tr], epochs=epochs, progress=False)[0]

        def measure(judge):
            report = age_axis.judge_report(judge, faces.images[va], ages[va], ages[tr])
            return {"judge_mae": report["judge_mae"], "mean_baseline_mae": report["mean_baseline_mae"],
                    "pearson": report["pearson"]}

        started = time.perf_counter()
        curve = self.read_curve("age_judge")
        epochs = self.schedules["age_judge"].minimum if curve.empty else 2 * int(curve["epoch"].max())
        # The rate decays to 0 over each run, so every length is its own run: double it while it helps.
        judges = {}
        while epochs <= self.schedules["age_judge"].cap and (len(curve) < 2 or still_improving(
                curve, TOLERANCES["age_judge"], self.schedules["age_judge"].window)):
            judges[epochs] = fit(epochs)
            curve = self.append_curve("age_judge", {"epoch": epochs, **measure(judges[epochs])})
            epochs *= 2
        best = int(curve.loc[curve["judge_mae"].idxmin(), "epoch"])
        judge = judges[best] if best in judges else fit(best)  # a resumed run trains it again
        self.add_time("age_judge", time.perf_counter() - started)
        config = {"image_size": judge.image_size, "width": judge.width, "blocks": 4}
        self.write("age_judge", "age_judge", config, judge, curve, "epoch", measure(judge), length=best)

    def axis(self) -> None:
        from course_utils import age_axis, conditions
        from course_utils.pretrained import load
        from course_utils.train_gan import train_gan

        faces, tr, va = self._axis_faces()
        ages = faces.table["age"].to_numpy()
        judge = load("age_judge", self.out)
        real = self._real(va, faces)
        for scheme in AXIS_SCHEMES:
            name = f"axis_gan_{scheme}"
            condition_of = conditions.scheme_condition(scheme)

            def train_to(stop: int, scheme=scheme, name=name):
                config = self.course.axis_gan_config(
                    scheme, steps=stop, checkpoint_every=self.schedules["axis_gan"].chunk,
                    sample_every=self.schedules["axis_gan"].chunk, **GAN_SETTINGS,
                    **({"threads": self.threads} if self.threads else {}))
                result = train_gan(faces.images[tr], conditions.condition_for_ages(ages[tr], scheme).numpy(), config,
                                   self.work / name, resume=True, progress=False)
                self._gan_config = config
                return result

            def measure(result, condition_of=condition_of):
                generator = shipped_generator(result)
                fit = age_axis.curve_fit(age_axis.response_curve(
                    generator, judge, condition_of, n_noise=PROBE_SIZES[self.size]["renders_per_group"] // 2))
                return {"speckle": self._speckle(generator, real, scheme_condition=condition_of),
                        "slope": fit["slope"], "pearson": fit["pearson"], "years_off": fit["years_off"],
                        "speckle_as_trained": self._speckle(result.generator, real, scheme_condition=condition_of)}

            if not self.shipped(name):
                curve, stop = self.schedule_loop(name, "axis_gan", "step", train_to, measure)
                generator = shipped_generator(train_to(stop))
                last = curve.iloc[-1].to_dict()
                self.write(name, "gan", self._gan_config.to_dict(), generator, curve, "step",
                           {key: last[key] for key in curve.columns if key not in ("step", "wall_seconds")})
            encoder_name = f"axis_encoder_{scheme}"
            if not self.shipped(encoder_name):
                generator = load(name, self.out)
                width = self.course.current_preset(device=torch.device("cpu"), axis=True).encoder_width
                config, curve = self._encoder(encoder_name, generator, {"width": width},
                                              self.work / encoder_name)
                self.write(encoder_name, "encoder", config.to_dict(), self._encoder_model, curve, "step",
                           {"unexplained_variance": float(curve["unexplained_variance"].iloc[-1])})

    # ---------------------------------------------------------------- measures
    def _axis_faces(self):
        faces = self.course.axis_faces(progress=False, device=torch.device("cpu"))
        tr, va = self.faces.split()
        return faces, tr, va

    def _real(self, rows, faces=None):
        from course_utils.tensors import to_model_range

        return to_model_range((faces or self.faces).images[rows])

    @staticmethod
    def _speckle(generator, real, scheme_condition=None) -> float:
        from course_utils.metrics import speckle_ratio
        from course_utils.tensors import one_hot

        z = torch.randn(512, generator.z_dim, generator=torch.Generator().manual_seed(2))
        if scheme_condition is None:
            condition = one_hot(torch.arange(512) % generator.n_classes, generator.n_classes)
        else:
            ages = np.linspace(20, 70, 512)
            condition = torch.stack([torch.as_tensor(scheme_condition(a), dtype=torch.float32) for a in ages])
        with torch.no_grad():
            samples = generator.eval()(z, condition)
        return speckle_ratio(samples, real)


class GroundTruthProbe:
    """The chapter 5 measurement without an encoder, so that it can follow the GAN's training: held-out
    faces (not chapter 5's reported ones) fitted by refinement from a fixed random z, moved to the other
    group, and compared with their true renders. Reported as RMS relative to input + mean group difference."""

    def __init__(self, trainer: Trainer, n_faces: int, refine_steps: int):
        from course_utils.tensors import one_hot, to_model_range

        course, faces = trainer.course, trainer.faces
        val = trainer.val_idx  # a tiny run has fewer held-out faces than chapter 5 reports
        rows = (course.tuning_faces(val) if len(val) > course.REPORTED_FACES else val)[:n_faces]
        self.refine_steps = refine_steps
        self.photos = to_model_range(faces.images[rows])
        targets, truth = course.ground_truth_at_other_group(faces, rows)
        self.truth = to_model_range(truth)
        n_classes = len(faces.age_groups)
        self.source = one_hot(torch.as_tensor(faces.labels[rows]), n_classes)
        self.target = one_hot(torch.as_tensor(targets), n_classes)
        self.means = course.group_means(faces)
        from course_utils.age_change import population_change

        self.baseline = self._rms(self.photos + population_change(self.means, self.source, self.target))
        self.start = torch.randn(len(rows), 100, generator=torch.Generator().manual_seed(3))

    def _rms(self, output: torch.Tensor) -> float:
        return float((output.clamp(-1, 1) - self.truth).pow(2).flatten(1).mean(1).sqrt().mean())

    def measure(self, generator) -> dict:
        from course_utils.age_change import clean_change
        from course_utils.aging import refine_latent

        z, _ = refine_latent(generator, self.start, self.photos, self.source, steps=self.refine_steps)
        with torch.no_grad():
            raw = generator(z, self.target) - generator(z, self.source)
        cleaned = clean_change(raw, self.source, self.target, self.means, guide=self.photos)
        return {"raw_edit_vs_mean_difference": self._rms(self.photos + raw) / self.baseline,
                "edit_vs_mean_difference": self._rms(self.photos + cleaned) / self.baseline}


def report(folder: Path) -> None:
    """Print a Markdown table of the shipped models' cards and plot their curves into assets/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils import pretrained

    lines = ["| model | trained for | wall time | held-out figures |", "|---|---|---|---|"]
    for name in pretrained.MODELS:
        card = pretrained.card(name, folder)
        figures = ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in card["figures"].items())
        lines.append(f"| `{name}` | {card[card['curve_unit']]:,} {card['curve_unit']}s | "
                     f"{card['wall_seconds'] / 60:.0f} min | {figures} |")
    print("\n".join(lines))
    print(f"\nmachine: {pretrained.card('gan', folder)['machine']['cpu']}; commit {pretrained.card('gan', folder)['commit']}")
    panels = [("gan", ["speckle", "speckle_as_trained"], "speckle (generated / real)"),
              ("gan", ["accuracy", "flip_rate"], "conditioning (chapter 3's judge)"),
              ("gan", ["raw_edit_vs_mean_difference", "edit_vs_mean_difference"], "RMS to truth / average only"),
              ("encoder", ["unexplained_variance"], "unexplained variance of z"),
              ("axis_gan_thermometer", ["years_off"], "years off the diagonal"),
              ("axis_gan_six-groups", ["years_off"], "years off the diagonal")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    for ax, (name, columns, label) in zip(axes.flat, panels):
        curve = pretrained.curve(name, folder)
        for column in columns:
            ax.plot(curve["step"], curve[column], marker=".", label=column)
        ax.set(title=name, xlabel="training step", ylabel=label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = ROOT / "assets" / "course_model_curves.png"
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="course home for the data and the training runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the models and cards go (default: course_utils/pretrained; tiny runs: <home>/pretrained)")
    parser.add_argument("--size", choices=SIZES, default="course")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=STAGES)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--report", action="store_true", help="print the cards as a table and plot their curves")
    args = parser.parse_args()
    if args.report:
        return report(args.out or ROOT / "course_utils" / "pretrained")
    if args.home is None:
        parser.error("--home is needed to train")
    home = args.home.resolve()
    out = args.out or (home / "pretrained" if args.size == "tiny" else ROOT / "course_utils" / "pretrained")
    if args.size == "tiny" and out.resolve() == (ROOT / "course_utils" / "pretrained").resolve():
        parser.error("a tiny run must not overwrite the course's shipped models")
    if args.threads:
        torch.set_num_threads(args.threads)
    trainer = Trainer(home, out.resolve(), args.size, args.threads)
    print(f"training {', '.join(args.only)} into {trainer.out} on {machine()['cpu']}", flush=True)
    for stage in STAGES:
        if stage in args.only and (stage == "axis" or not trainer.shipped(stage)):
            getattr(trainer, stage)()
    print("done", flush=True)


if __name__ == "__main__":
    main()
