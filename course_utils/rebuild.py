"""What an earlier chapter made, loaded or rebuilt, so that every chapter can run on its own.

Colab opens one notebook at a time. When an earlier chapter's output is missing (the face
cache, or the generator, encoder or classifier checkpoint), the ``ensure_*`` functions
rebuild it with the settings that chapter uses, after saying so and how long it takes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import paths, pretrained
from .age_axis import AgeJudge, train_age_judge
from .classifier import AgeClassifier, load_classifier, save_classifier, train_classifier
from .checkpoints import load_checkpoint
from .conditions import SIX_GROUPS, condition_for_ages
from .data import FaceCache, latest_face_settings, load_face_cache
from .models import Encoder, Generator
from .run_configs import axis_encoder_config, axis_gan_config, axis_run_dir, current_preset, encoder_config, gan_config
from .train_encoder import load_encoder, train_encoder
from .train_gan import load_generator, train_gan

CLASSIFIER_SEED = 0
# Rough minutes on 2 CPU cores of rebuilding each output for mini-wiki, for the messages below
# (real data on a CPU prints its own estimate before training).
MINI_WIKI_MINUTES_ON_CPU = {"faces": 1, "gan": 1, "classifier": 1, "encoder": 1}


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


def axis_faces(progress: bool = True, device: torch.device | None = None) -> FaceCache:
    """Chapter 6's faces of all ages, in Age-cGAN's six groups, at its preset's image size.

    A side cache: chapter 1's note of the last settings, which chapters 2-5 follow, is left as it was.
    """
    return load_face_cache(paths.dataset_name(), image_size=current_preset(device=device, axis=True).image_size,
                           age_groups=SIX_GROUPS, progress=progress, remember=False)


def _trained_for_other_data(n_classes: int, image_size: int, faces: FaceCache, what: str) -> bool:
    """Whether a checkpoint's groups or image size differ from ``faces``; says so, as it will be retrained."""
    wanted = (len(faces.age_groups), int(faces.images.shape[1]))
    if (n_classes, image_size) == wanted:
        return False
    print(f"The {what} checkpoint was trained for {n_classes} age groups at {image_size} px, but the faces have "
          f"{wanted[0]} groups at {wanted[1]} px: retraining it "
          f"(mini-wiki: about {MINI_WIKI_MINUTES_ON_CPU[what]} min on a 2-core CPU).", flush=True)
    return True


def _load_or_train(path: Path, load, sizes, train, faces: FaceCache, what: str, missing: str):
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
    train, _ = faces.split()
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
    train, val = faces.split()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CLASSIFIER_SEED)  # the same weights whichever chapter trains it
        model = AgeClassifier(n_classes=len(faces.age_groups))
    model, history = train_classifier(
        model, faces.images[train], faces.labels[train], faces.images[val], faces.labels[val],
        epochs=current_preset(faces.dataset or None).classifier_epochs, seed=CLASSIFIER_SEED, progress=progress)
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
              f"retraining it (mini-wiki: about {MINI_WIKI_MINUTES_ON_CPU['encoder']} min on a 2-core CPU).",
              flush=True)
    else:
        _announce("encoder", "The encoder checkpoint (chapter 4)")
    train_encoder(generator, encoder_config(generator), paths.run_dir(), progress=progress)
    return load_encoder(path)


@dataclass
class ChapterModels:
    """The models a chapter measures and ages with, and whose they are (``from_course``)."""

    generator: Generator
    classifier: AgeClassifier
    encoder: Encoder | None
    from_course: bool  # the course's shipped long-trained models, or the learner's own (chapters 2-4)

    @property
    def whose(self) -> str:
        return "the course's long-trained models" if self.from_course else "your own models (chapters 2-4)"


def course_models_fit(faces: FaceCache) -> str | None:
    """None when the shipped models were trained for these faces; else why not (in words)."""
    card = pretrained.card("gan")
    wanted = (card["data"]["dataset"], card["config"]["n_classes"], card["config"]["image_size"])
    have = (faces.dataset or paths.dataset_name(), len(faces.age_groups), int(faces.images.shape[1]))
    if have == wanted:
        return None
    return (f"they were trained on {wanted[0]} with {wanted[1]} age groups at {wanted[2]} px, "
            f"and these faces are {have[0]} with {have[1]} groups at {have[2]} px")


def chapter_models(faces: FaceCache, use_course_models: bool = True, encoder: bool = True,
                   progress: bool = True) -> ChapterModels:
    """Chapters 3 and 5: the course's long-trained generator, age judge and encoder when asked for and made
    for these faces; otherwise your own from chapters 2-4 (rebuilt if missing), saying why."""
    if use_course_models:
        reason = course_models_fit(faces)
        if reason is None:
            return ChapterModels(pretrained.load("gan"), pretrained.load("classifier"),
                                 pretrained.load("encoder") if encoder else None, from_course=True)
        print(f"Using your own models instead of the course's: {reason}.", flush=True)
    generator = ensure_generator(faces, progress)
    return ChapterModels(generator, ensure_classifier(faces, progress),
                         ensure_encoder(generator, progress) if encoder else None, from_course=False)


AXIS_SCHEMES = ("six-groups", "thermometer")


@dataclass
class AxisModels:
    """Chapter 6's models: an age judge in years, and a generator and an encoder per condition scheme."""

    judge: AgeJudge
    generators: dict
    encoders: dict
    from_course: bool


def axis_models(faces: FaceCache, use_course_models: bool = True, progress: bool = True) -> AxisModels:
    """Chapter 6: the course's long-trained age judge, generators and encoders when asked for and made for
    these faces; otherwise trained here with the ``axis-*`` preset (resuming what an earlier run left)."""
    if use_course_models:
        card = pretrained.card("axis_gan_thermometer")
        wanted = (card["data"]["dataset"], card["config"]["image_size"])
        have = (faces.dataset or paths.dataset_name(), int(faces.images.shape[1]))
        if have == wanted:
            return AxisModels(pretrained.load("age_judge"),
                              {scheme: pretrained.load(f"axis_gan_{scheme}") for scheme in AXIS_SCHEMES},
                              {scheme: pretrained.load(f"axis_encoder_{scheme}") for scheme in AXIS_SCHEMES},
                              from_course=True)
        print(f"Training chapter 6's models here: the course's were trained on {wanted[0]} at {wanted[1]} px, "
              f"and these faces are {have[0]} at {have[1]} px.", flush=True)
    train, _ = faces.split()
    ages = faces.table["age"].to_numpy()
    judge, _ = train_age_judge(faces.images[train], ages[train], epochs=current_preset(axis=True).judge_epochs,
                               progress=progress)
    generators, encoders = {}, {}
    for scheme in AXIS_SCHEMES:
        generators[scheme] = train_gan(faces.images[train], condition_for_ages(ages[train], scheme).numpy(),
                                       axis_gan_config(scheme), axis_run_dir(scheme), resume=True,
                                       progress=progress).generator_ema
        encoders[scheme] = train_encoder(generators[scheme], axis_encoder_config(generators[scheme]),
                                         axis_run_dir(scheme), resume=True, progress=progress).encoder
    return AxisModels(judge, generators, encoders, from_course=False)
