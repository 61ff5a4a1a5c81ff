"""The course's long-trained models, shipped inside the package, each with a model card.

``scripts/train_course_models.py`` trains them (hours on a 2-core CPU, minutes on a
GPU) and writes ``course_utils/pretrained/<name>.pt`` (the weights in fp16) and
``<name>.json``, the model card: the data and renderer version, the configuration
and steps, the wall time and machine, the commit, the SHA-256 of the weights file,
the quality figures measured on held-out faces and their curve against steps.

Loading checks the file against its card's SHA-256 first, then reads it with the
course's checkpoint loaders (``weights_only=True``). A pip-installed package (Colab)
carries the same files as package data.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from torch import nn

from .age_axis import load_age_judge
from .classifier import load_classifier
from .train_encoder import load_encoder
from .train_gan import load_generator

FOLDER = Path(__file__).with_name("pretrained")
# name -> what it is; chapters 2-5 use the first three, chapter 6 the rest.
MODELS = {
    "gan": "chapters 2-5: the conditional DCGAN's generator, two age groups, 64x64",
    "encoder": "chapters 4-5: the encoder that inverts the gan generator",
    "classifier": "chapters 3 and 5: the age-group judge",
    "age_judge": "chapter 6: the age judge in years, 32x32",
    "axis_gan_six-groups": "chapter 6: generator conditioned on Age-cGAN's six groups, 32x32",
    "axis_gan_thermometer": "chapter 6: generator conditioned on the thermometer code of the age, 32x32",
    "axis_encoder_six-groups": "chapter 6: encoder of the six-group generator",
    "axis_encoder_thermometer": "chapter 6: encoder of the thermometer generator",
}


class ModelFileError(ValueError):
    """A shipped model file is missing or does not match its model card."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def architecture_signature(model: nn.Module) -> str:
    """SHA-256 of a model's layers (its repr) and its weights' names and shapes: it changes when the
    architecture does, so a card records the architecture its weights were trained for."""
    shapes = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    return hashlib.sha256(f"{model!r}\n{shapes!r}".encode()).hexdigest()


def card(name: str, folder: Path | None = None) -> dict:
    """The model card of a shipped model."""
    if name not in MODELS:
        raise ValueError(f"{name!r} is not one of the course's models: {', '.join(MODELS)}")
    path = (folder or FOLDER) / f"{name}.json"
    if not path.is_file():
        raise ModelFileError(f"the course model {name!r} has no card at {path}; "
                             "run scripts/train_course_models.py to make it")
    return json.loads(path.read_text())


def verified_path(name: str, folder: Path | None = None) -> Path:
    """The weights file of ``name``, after checking its SHA-256 against the card."""
    folder = folder or FOLDER
    expected = card(name, folder)["sha256"]
    path = folder / f"{name}.pt"
    if not path.is_file():
        raise ModelFileError(f"the weights of the course model {name!r} are missing: {path}")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelFileError(f"{path} does not match its model card (SHA-256 {actual[:12]}..., the card says "
                             f"{expected[:12]}...): the file was changed or damaged; restore it from the repository")
    return path


def load(name: str, folder: Path | None = None) -> nn.Module:
    """A shipped model in eval mode on the CPU: a Generator, Encoder, AgeClassifier or AgeJudge."""
    path = verified_path(name, folder)
    kind = card(name, folder)["kind"]
    if kind == "gan":
        return load_generator(path)
    if kind == "encoder":
        return load_encoder(path)
    if kind == "classifier":
        return load_classifier(path)
    if kind == "age_judge":
        return load_age_judge(path)
    raise ModelFileError(f"the card of {name!r} names an unknown kind {kind!r}")


def figures(name: str, folder: Path | None = None) -> dict:
    """The quality figures the card records, measured on held-out faces when the model was trained."""
    return card(name, folder)["figures"]


def curve(name: str, folder: Path | None = None) -> pd.DataFrame:
    """The card's quality figures against training steps (or epochs), one row per evaluation."""
    return pd.DataFrame(card(name, folder)["curve"])
