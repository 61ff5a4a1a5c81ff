"""Where the course keeps datasets, caches and training runs.

Everything lives under one folder, ``FACE_AGING_HOME``. Inside a checkout of
the course repository it defaults to ``<repo>/.course_data`` (git-ignored);
an installed copy (Colab) defaults to ``~/face_aging_course``.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATASET = "mini-wiki"
KNOWN_DATASETS = ("mini-wiki", "wiki", "imdb")


def repo_root() -> Path | None:
    """The course checkout this package was imported from, if any."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").exists() else None


def course_home() -> Path:
    env = os.environ.get("FACE_AGING_HOME")
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    return root / ".course_data" if root else Path.home() / "face_aging_course"


def dataset_name() -> str:
    """The dataset the course runs on: ``FACE_AGING_DATASET`` or mini-wiki."""
    name = os.environ.get("FACE_AGING_DATASET", DEFAULT_DATASET).strip().lower()
    if name not in KNOWN_DATASETS:
        raise ValueError(
            f"FACE_AGING_DATASET={name!r} is not one of {', '.join(KNOWN_DATASETS)}"
        )
    return name


def _known(dataset: str | None) -> str:
    """``dataset`` (default: the current one), refused unless it is a known name: it becomes a folder name."""
    if not dataset:
        return dataset_name()
    if dataset not in KNOWN_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(KNOWN_DATASETS)}")
    return dataset


def datasets_dir() -> Path:
    """Downloaded or generated archives and their extracted folders."""
    return course_home() / "datasets"


def cache_dir(dataset: str | None = None) -> Path:
    """Cropped 64x64 face caches for one dataset."""
    return course_home() / "cache" / _known(dataset)


def run_dir(dataset: str | None = None) -> Path:
    """Checkpoints and sample grids of the training runs on one dataset."""
    return course_home() / "runs" / _known(dataset)


def summary_dir() -> Path:
    """One JSON file of key figures per chapter, read by ``make course``."""
    return course_home() / "summary"
