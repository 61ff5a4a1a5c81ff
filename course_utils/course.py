"""The course's default run, shared by every chapter: settings, the split, and rebuilding.

Each chapter can run on its own (Colab opens one notebook at a time). When an
earlier chapter's output is missing — the face cache, or the generator, encoder
or classifier checkpoint — the ``ensure_*`` functions rebuild it with the same
settings the earlier chapter uses, after saying so and how long it will take.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from . import age_axis, paths
from .classifier import AgeClassifier, load_classifier, save_classifier, train_classifier
from .checkpoints import load_checkpoint
from .data import FaceCache, latest_face_settings, load_face_cache, split_by_identity
from .device import pick_device
from .models import Encoder, Generator
from .train_encoder import EncoderConfig, load_encoder, train_encoder
from .train_gan import GanConfig, load_generator, train_gan

VAL_FRACTION = 0.15
SPLIT_SEED = 0

# The one device rule: GanConfig / EncoderConfig defaults are sized for a 2-core CPU; on a GPU
# (CUDA or MPS) the course trains longer. Everything else is the same on every device.
GPU_GAN_STEPS = 20000
GPU_ENCODER_STEPS = 8000
CLASSIFIER_EPOCHS = 6
CLASSIFIER_SEED = 0

# Rough CPU minutes on 2 cores, for the messages of the ensure_* functions.
MINUTES_ON_CPU = {"faces": 1, "gan": 5, "classifier": 1, "encoder": 4}


def gan_config(faces: FaceCache | None = None, device: torch.device | None = None, **overrides) -> GanConfig:
    """The course's GAN settings (the GanConfig defaults) for ``faces``: its age groups and image size.

    On a GPU the run is ``GPU_GAN_STEPS`` long unless ``steps`` is given.
    """
    settings = {} if faces is None else dict(n_classes=len(faces.age_groups), image_size=faces.images.shape[1])
    scheme = overrides.get("condition", "groups")
    if scheme != "groups":  # the age-axis schemes have their own size, whatever the cache's groups
        settings["n_classes"] = age_axis.condition_size(scheme)
    if (device or pick_device()).type != "cpu":
        settings["steps"] = GPU_GAN_STEPS
    return GanConfig(**{**settings, **overrides})


def encoder_config(generator: Generator, device: torch.device | None = None, **overrides) -> EncoderConfig:
    """The course's encoder settings (the EncoderConfig defaults) for ``generator``'s z, groups and size.

    On a GPU the run is ``GPU_ENCODER_STEPS`` long unless ``steps`` is given.
    """
    settings = {"steps": GPU_ENCODER_STEPS} if (device or pick_device()).type != "cpu" else {}
    return EncoderConfig.for_generator(generator, **{**settings, **overrides})


# ---------------------------------------------------------------- chapter 6: the age axis
# Chapter 6 trains two GANs, an age judge and an encoder and must run in about 4 minutes on a 2-core CPU,
# so it works on 32x32 faces with width-16 models, on one CPU thread: models this small gain little from a
# second thread, and on a 2-core machine shared with other work two threads ran a GAN step 5x slower than one
# (0.30 s vs 0.06 s, measured 2026-11-30). These are its settings, in one place; on a GPU (CUDA or MPS) the
# same chapter trains 64x64 faces at the course width, for the course's GPU run lengths.
AXIS_CPU = {"image_size": 32, "width": 16, "gan_steps": 1200, "encoder_steps": 400, "judge_epochs": 8, "threads": 1}
AXIS_GPU = {"image_size": 64, "width": 32, "gan_steps": GPU_GAN_STEPS, "encoder_steps": GPU_ENCODER_STEPS,
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


def _announce(what: str, missing: str) -> None:
    print(f"{missing} is missing: rebuilding {what} now, as an earlier chapter would "
          f"(about {MINUTES_ON_CPU[what]} min on a 2-core CPU, much less on a GPU).", flush=True)


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
          f"{wanted[0]} groups at {wanted[1]} px: retraining it (about {MINUTES_ON_CPU[what]} min on a 2-core CPU).",
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
        epochs=CLASSIFIER_EPOCHS, seed=CLASSIFIER_SEED, progress=progress)
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
              f"retraining it (about {MINUTES_ON_CPU['encoder']} min on a 2-core CPU).", flush=True)
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
    path = folder / f"{chapter}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, indent=1, default=float))
    os.replace(tmp, path)


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
