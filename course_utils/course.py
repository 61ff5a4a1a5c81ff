"""The course's default run, shared by every chapter: settings, the split, and rebuilding.

Each chapter can run on its own (Colab opens one notebook at a time). When an
earlier chapter's output is missing — the face cache, or the generator, encoder
or classifier checkpoint — the ``ensure_*`` functions rebuild it with the same
settings the earlier chapter uses, after saying so and how long it will take.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import age_axis, paths
from .classifier import AgeClassifier, load_classifier, save_classifier, train_classifier
from .checkpoints import load_checkpoint
from .data import FaceCache, latest_face_settings, load_face_cache, split_by_identity
from .device import pick_device
from .files import write_atomically
from .models import Encoder, Generator
from .tensors import to_model_range
from .train_encoder import EncoderConfig, load_encoder, train_encoder
from .train_gan import GanConfig, load_generator, train_gan

VAL_FRACTION = 0.15
SPLIT_SEED = 0

# ---------------------------------------------------------------- the size of a run
# The one place that sizes training from the dataset and the device. The GanConfig and
# EncoderConfig defaults are the mini-wiki CPU run; every other row says what changes.

@dataclass(frozen=True)
class RunSize:
    """How long and how wide the course trains, and how long that takes."""

    gan_steps: int
    encoder_steps: int
    width: int  # GAN base width (the encoder keeps its own)
    batch_size: int  # GAN images per step
    classifier_epochs: int
    seconds_per_step: float | None  # a GAN or encoder step (they cost about the same), for the printed estimate; None: unknown
    note: str


RUN_SIZES = {
    # Measured on a 2-core AMD EPYC (AVX-512): ~0.28 s a GAN step, ~0.3 s an encoder step.
    ("mini-wiki", "cpu"): RunSize(850, 600, 32, 64, 6, 0.28, "the course run: sized for a 2-core CPU"),
    ("mini-wiki", "gpu"): RunSize(20000, 8000, 32, 64, 6, None, "a longer run, as a GPU allows"),
    # Real faces vary far more than mini-wiki's: longer runs, a wider model on a GPU.
    ("real", "cpu"): RunSize(3000, 1500, 32, 64, 6, 0.28,
                             "real data on a CPU: three times the mini-wiki run, and still short"),
    ("real", "gpu"): RunSize(30000, 10000, 64, 128, 10, None, "real data on a GPU (an unmeasured estimate)"),
    # For tests and a first look: minutes become seconds, results mean nothing. Yet long enough
    # for the checks every dataset gets (measured on a 729-face wiki-layout run): at 40 GAN steps
    # the generator has not left its near-constant start (diversity 0.13, i.e. "mode collapse"),
    # and a classifier of under ~10 epochs of 5 batches calls every face one group (a blind judge).
    ("tiny", "any"): RunSize(120, 200, 8, 16, 10, None, "FACE_AGING_RUN_SIZE=tiny: a smoke run, not a result"),
}
CLASSIFIER_SEED = 0

# Rough minutes of the mini-wiki course run on 2 CPU cores, for the messages of the ensure_* functions
# (real data on a CPU prints its own estimate from RunSize.seconds_per_step before training).
MINI_WIKI_MINUTES_ON_CPU = {"faces": 1, "gan": 4, "classifier": 1, "encoder": 3}


def run_size(dataset: str | None = None, device: torch.device | None = None) -> RunSize:
    """The run's size for ``dataset`` (default: the current one) on ``device`` (default: the best one).

    ``FACE_AGING_RUN_SIZE=tiny`` picks the smoke-test size whatever the data and device.
    """
    if os.environ.get("FACE_AGING_RUN_SIZE", "").strip().lower() == "tiny":
        return RUN_SIZES[("tiny", "any")]
    dataset = dataset or paths.dataset_name()
    kind = "mini-wiki" if dataset == "mini-wiki" else "real"
    hardware = "cpu" if (device or pick_device()).type == "cpu" else "gpu"
    return RUN_SIZES[(kind, hardware)]


def _warn_if_slow(size: RunSize, steps: int, what: str, dataset: str) -> None:
    """Before a long CPU run on real data, say how long it should take (an estimate)."""
    if size.seconds_per_step is None or dataset == "mini-wiki":
        return
    minutes = steps * size.seconds_per_step / 60
    print(f"Training the {what} on {dataset} on a CPU: {steps} steps, roughly {minutes:.0f} min "
          f"(an estimate from a 2-core CPU; a GPU is far faster). {size.note}.", flush=True)


def gan_config(faces: FaceCache | None = None, device: torch.device | None = None, **overrides) -> GanConfig:
    """The course's GAN settings for ``faces`` (its age groups and image size), sized by :func:`run_size`
    for the faces' dataset (without faces: the current dataset; no time estimate is printed)."""
    dataset = (faces.dataset or None) if faces is not None else None
    size = run_size(dataset, device)
    settings = dict(steps=size.gan_steps, width=size.width, batch_size=size.batch_size)
    if faces is not None:
        settings.update(n_classes=len(faces.age_groups), image_size=faces.images.shape[1])
    scheme = overrides.get("condition", "groups")
    if scheme != "groups":  # the age-axis schemes have their own size, whatever the cache's groups
        settings["n_classes"] = age_axis.condition_size(scheme)
    config = GanConfig(**{**settings, **overrides})
    if faces is not None:
        _warn_if_slow(size, config.steps, "GAN", dataset or paths.dataset_name())
    return config


def encoder_config(generator: Generator, device: torch.device | None = None, dataset: str | None = None,
                   **overrides) -> EncoderConfig:
    """The course's encoder settings for ``generator``'s z, groups and size, sized by :func:`run_size`
    for ``dataset`` (default: the current one)."""
    dataset = dataset or paths.dataset_name()
    size = run_size(dataset, device)
    settings = {"steps": size.encoder_steps}
    if size is RUN_SIZES[("tiny", "any")]:
        settings.update(width=8, hidden=64, batch_size=32, lr=1e-3, eval_pairs=64)  # recovers ~15% of z
    config = EncoderConfig.for_generator(generator, **{**settings, **overrides})
    _warn_if_slow(size, config.steps, "encoder", dataset)
    return config


def is_smoke_run() -> bool:
    """Whether this is a ``FACE_AGING_RUN_SIZE=tiny`` run: seconds of training, results mean nothing."""
    return run_size() is RUN_SIZES[("tiny", "any")]


def mini_wiki_thresholds_apply() -> bool:
    """Whether a checkpoint cell also asserts the thresholds tuned on the mini-wiki course run.

    Every dataset gets the checks that hold for any working run (finite losses, no mode
    collapse, better than a trivial baseline). The tuned thresholds (e.g. conditioning
    accuracy >= 0.70) hold for the mini-wiki course run only: not on real data, and not
    for a ``FACE_AGING_RUN_SIZE=tiny`` smoke run. Prints which checks apply.
    """
    dataset, size = paths.dataset_name(), run_size()
    applies = dataset == "mini-wiki" and not is_smoke_run()
    if applies:
        print("checks: those for every dataset, plus the thresholds measured on the mini-wiki course run")
    else:
        print(f"checks: only those that hold on every dataset ({dataset}, {size.note}); "
              "the mini-wiki thresholds do not apply")
    return applies


# ---------------------------------------------------------------- chapter 6: the age axis
# Chapter 6 trains two GANs, an age judge and an encoder and must run in about 4 minutes on a 2-core CPU,
# so it works on 32x32 faces with width-16 models, on one CPU thread: models this small gain little from a
# second thread, and on a 2-core machine shared with other work two threads ran a GAN step 5x slower than one
# (0.30 s vs 0.06 s, measured 2026-11-30). These are its settings, in one place; on a GPU (CUDA or MPS) the
# same chapter trains 64x64 faces at the course width, for the course's GPU run lengths.
AXIS_CPU = {"image_size": 32, "width": 16, "gan_steps": 1600, "encoder_steps": 400, "judge_epochs": 8, "threads": 1}
AXIS_GPU = {"image_size": 64, "width": 32, "gan_steps": RUN_SIZES[("mini-wiki", "gpu")].gan_steps,
            "encoder_steps": RUN_SIZES[("mini-wiki", "gpu")].encoder_steps,
            "judge_epochs": 20, "threads": None}


def age_axis_settings(device: torch.device | None = None) -> dict:
    """Chapter 6's sizes and run lengths for ``device`` (default: the best available)."""
    return dict(AXIS_CPU if (device or pick_device()).type == "cpu" else AXIS_GPU)


def age_axis_faces(progress: bool = True, device: torch.device | None = None) -> FaceCache:
    """Faces of all ages, in Age-cGAN's six groups, at chapter 6's image size.

    A side cache: chapter 1's note of the last settings, which chapters 2-5 follow, is left as it was.
    """
    return load_face_cache(paths.dataset_name(), image_size=age_axis_settings(device)["image_size"],
                           age_groups=age_axis.SIX_GROUPS, progress=progress, remember=False)


def age_axis_run_dir(scheme: str, dataset: str | None = None) -> Path:
    """Where chapter 6 (and ``train-gan --condition``) keep the GAN and encoder of one condition scheme."""
    return paths.run_dir(dataset) / f"age_axis_{age_axis.check_scheme(scheme)}"


def age_axis_gan_config(scheme: str, device: torch.device | None = None, **overrides) -> GanConfig:
    """Chapter 6's GAN settings for a condition scheme (GanConfig defaults otherwise)."""
    settings = age_axis_settings(device)
    return GanConfig(**{"condition": scheme, "n_classes": age_axis.condition_size(scheme),
                        "image_size": settings["image_size"], "width": settings["width"],
                        "steps": settings["gan_steps"], "sample_every": settings["gan_steps"],
                        "threads": settings["threads"], **overrides})


def age_axis_encoder_config(generator: Generator, device: torch.device | None = None, **overrides) -> EncoderConfig:
    """Chapter 6's encoder settings for ``generator`` (its z, scheme, size), at chapter 6's width and length."""
    settings = age_axis_settings(device)
    return EncoderConfig.for_generator(generator, **{"width": settings["width"], "steps": settings["encoder_steps"],
                                                     "threads": settings["threads"], **overrides})


def split_indices(faces: FaceCache) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices of the cache, split by person (the same in every chapter)."""
    train, val = split_by_identity(faces.table.reset_index(drop=True), VAL_FRACTION, SPLIT_SEED)
    return train.index.to_numpy(), val.index.to_numpy()


def group_means(faces: FaceCache) -> torch.Tensor:
    """The mean training face of each age group, (K, 3, H, W) in [-1, 1]: the edit's population prior
    (``aging.EditSettings``) and chapter 5's "input + mean group difference" baseline."""
    train, _ = split_indices(faces)
    images, labels = faces.images[train], faces.labels[train]
    return torch.stack([to_model_range(images[labels == group]).mean(0) for group in range(len(faces.age_groups))])


REPORTED_FACES = 96  # chapter 5 reports on this many held-out faces; scripts/tune_edit.py tunes on the others


def reported_faces(val_idx: np.ndarray) -> np.ndarray:
    """The held-out faces chapter 5 reports on (the same in every run)."""
    return val_idx[np.random.default_rng(0).choice(len(val_idx), REPORTED_FACES, replace=False)]


def tuning_faces(val_idx: np.ndarray) -> np.ndarray:
    """The held-out faces chapter 5 does not report: where ``scripts/`` tune and probe the edit (sorted)."""
    return np.setdiff1d(val_idx, reported_faces(val_idx))


def aging_targets(labels, n_groups: int) -> np.ndarray:
    """The group chapter 5 ages each face to: the oldest group, and faces already in it to the youngest
    (with two groups: the other one)."""
    labels = np.asarray(labels)
    return np.where(labels == n_groups - 1, 0, n_groups - 1)


def ground_truth_at_other_group(faces: FaceCache, indices) -> tuple[np.ndarray, np.ndarray]:
    """mini-wiki only: each face re-rendered as the same person, moved to its :func:`aging_targets` group
    by the distance between the group centres -> (target labels (N,), truth uint8 (N, H, W, 3))."""
    from .data import render_ground_truth

    indices = np.asarray(indices)
    labels = faces.labels[indices]
    targets = aging_targets(labels, len(faces.age_groups))
    centres = np.array([np.mean(group) for group in faces.age_groups])
    years = faces.table["age"].to_numpy()[indices] + centres[targets] - centres[labels]
    truth = np.stack([render_ground_truth(faces.dataset_root, faces.table["full_path"].iloc[i], age,
                                          image_size=faces.images.shape[1]) for i, age in zip(indices, years)])
    return targets, truth


def _announce(what: str, missing: str) -> None:
    print(f"{missing} is missing: rebuilding {what} now, as an earlier chapter would "
          f"(mini-wiki: about {MINI_WIKI_MINUTES_ON_CPU[what]} min on a 2-core CPU, much less on a GPU).", flush=True)


def ensure_faces(progress: bool = True) -> FaceCache:
    """The chapter 1 face cache of the current dataset, built if missing.

    It has the age groups and image size chapter 1 built last, so a learner who
    changes the groups there gets them in every later chapter with no other edit.
    """
    settings = latest_face_settings(paths.dataset_name())
    return load_face_cache(paths.dataset_name(), image_size=settings["image_size"],
                           age_groups=settings["age_groups"], progress=progress)


def _trained_for_other_data(n_classes: int, image_size: int, faces: FaceCache, what: str) -> bool:
    """Whether a checkpoint's groups or image size differ from ``faces``; says so, as it will be retrained."""
    wanted = (len(faces.age_groups), int(faces.images.shape[1]))
    if (n_classes, image_size) == wanted:
        return False
    print(f"The {what} checkpoint was trained for {n_classes} age groups at {image_size} px, but the faces have "
          f"{wanted[0]} groups at {wanted[1]} px: retraining it (mini-wiki: about {MINI_WIKI_MINUTES_ON_CPU[what]} min on a 2-core CPU).",
          flush=True)
    return True


def _load_or_train(path, load, sizes, train, faces: FaceCache, what: str, missing: str):
    """The model at ``path`` if it was made for ``faces``' groups and size; else ``train()`` it (saying
    why) and load the result. ``sizes(model)`` -> (n_classes, image_size)."""
    if path.exists():
        model = load(path)
        if not _trained_for_other_data(*sizes(model), faces, what):
            return model
    else:
        _announce(what, missing)
    train()
    return load(path)


def ensure_generator(faces: FaceCache | None = None, progress: bool = True) -> Generator:
    """Chapter 2's generator; trained with the course settings if its checkpoint is missing or
    was trained for other age groups or another image size."""
    faces = faces or ensure_faces(progress)
    train, _ = split_indices(faces)
    return _load_or_train(
        paths.run_dir() / "gan.pt", load_generator, lambda model: (model.n_classes, model.image_size),
        lambda: train_gan(faces.images[train], faces.labels[train], gan_config(faces), paths.run_dir(),
                          progress=progress),
        faces, "gan", "The generator checkpoint (chapter 2)")


def ensure_classifier(faces: FaceCache | None = None, progress: bool = True) -> AgeClassifier:
    """Chapter 3's age-group classifier; trained if its checkpoint is missing or made for other groups."""
    faces = faces or ensure_faces(progress)
    return _load_or_train(
        paths.run_dir() / "classifier.pt", load_classifier, lambda model: (model.n_classes, model.image_size),
        lambda: train_age_classifier(faces, progress=progress),
        faces, "classifier", "The age classifier checkpoint (chapter 3)")


def train_age_classifier(faces: FaceCache, progress: bool = True):
    """Train chapter 3's classifier on the training split and save it -> (model, history)."""
    train, val = split_indices(faces)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CLASSIFIER_SEED)  # the same weights whichever chapter trains it
        model = AgeClassifier(n_classes=len(faces.age_groups))
    model, history = train_classifier(
        model, faces.images[train], faces.labels[train], faces.images[val], faces.labels[val],
        epochs=run_size().classifier_epochs, seed=CLASSIFIER_SEED, progress=progress)
    save_classifier(model, paths.run_dir() / "classifier.pt", history)
    return model, history


def ensure_encoder(generator: Generator | None = None, progress: bool = True) -> Encoder:
    """Chapter 4's encoder; trained if its checkpoint is missing or was made for a generator of
    other age groups or image size."""
    path = paths.run_dir() / "encoder.pt"
    generator = generator or ensure_generator(progress=progress)
    if path.exists():
        config = load_checkpoint(path, "encoder")["config"]
        if (config.get("n_classes"), config.get("image_size")) == (generator.n_classes, generator.image_size):
            return load_encoder(path)
        print(f"The encoder checkpoint was trained for another generator ({config.get('n_classes')} groups): "
              f"retraining it (mini-wiki: about {MINI_WIKI_MINUTES_ON_CPU['encoder']} min on a 2-core CPU).", flush=True)
    else:
        _announce("encoder", "The encoder checkpoint (chapter 4)")
    train_encoder(generator, encoder_config(generator), paths.run_dir(), progress=progress)
    return load_encoder(path)


# ---------------------------------------------------------------- chapter summaries
# Key figures of each chapter, written by the notebooks and tabled by ``make course``.

def record_summary(chapter: str, **figures) -> None:
    """Store a chapter's key figures (numbers or short strings) as JSON for ``make course``."""
    folder = paths.summary_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / f"{chapter}.json", json.dumps(figures, indent=1, default=float))


def read_summary(chapter: str) -> dict:
    path = paths.summary_dir() / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def format_figures(figures: dict) -> str:
    """One readable line: ``name=value`` pairs, floats to 3 significant digits."""
    parts = []
    for name, value in figures.items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{name}={value}")
    return ", ".join(parts)
