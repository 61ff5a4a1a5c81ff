"""The face cache: cropped uint8 faces plus their metadata, built once per setting.

``load_face_cache()`` makes sure the dataset exists, reads and filters the
metadata, assigns age groups, crops the faces in parallel and stores
``images.npy`` + ``table.json`` + ``funnel.csv`` in
``paths.cache_dir(dataset)/<key>/``. The key hashes the source metadata file
(path, size, mtime) and every setting, so changing a setting builds a new
cache and asking again reuses it. A build is written to a temporary folder and
renamed, so an interrupted build never leaves a half cache; one process builds
at a time (a lock file in the cache folder: a second notebook waits, then reads
what the first built), and it removes the staging a killed build left. A
read-only course home with a valid cache is read as it is. Nothing in the
cache is a pickle (anyone who can write the folder could make a pickle run
code): the table is JSON, the images a plain .npy read with allow_pickle=False.
A metadata path that leaves the dataset folder, or names a FIFO, device or
folder, is counted in the funnel ("not a file in the folder") and never opened.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paths
from ..files import exclusive, remove_leftovers, write_atomically
from .crops import CONVERSIONS, DEFAULT_MARGIN, NOT_A_DATASET_FILE, OK, REJECTIONS, crop_faces, dataset_photo_path
from .download import download_dataset
from .filtering import (DEFAULT_AGE_GROUPS, assign_age_groups, filter_faces, group_label_names, identity_keys,
                        split_by_identity, validate_age_groups)
from .metadata import read_imdb_wiki_metadata
from .mini_wiki import renderer_version_of

CACHE_FORMAT_VERSION = 2  # 2: table.json instead of table.pkl
VAL_FRACTION, SPLIT_SEED = 0.15, 0  # FaceCache.split: ~15% of the people are held out
FUNNEL_COLUMNS = ["stage", "rule", "removed", "converted", "remaining"]
BUILD_LOCK = "build.lock"
STAGING_GLOB = "." + "[0-9a-f]" * 16 + "-*"  # mkdtemp(prefix=f".{cache key}-"): a build's staging folder


@dataclass
class FaceCache:
    """Cropped faces and what is known about them.

    images: uint8 (N, H, W, 3). table: one row per image (label, age, name,
    identity, full_path, face box, photo_taken, gender, ...). funnel: how many
    photos each cleaning rule removed (or converted). age_groups: the inclusive
    (low, high) range of each label.
    """

    images: np.ndarray
    table: pd.DataFrame
    funnel: pd.DataFrame
    age_groups: tuple
    dataset: str = ""
    dataset_root: Path | None = None
    path: Path | None = None
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def label_names(self) -> list[str]:
        """Readable group names like "20-30", indexed by label."""
        return group_label_names(self.age_groups)

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and held-out row indices, split by person: the same split in every chapter."""
        train, val = split_by_identity(self.table.reset_index(drop=True), VAL_FRACTION, SPLIT_SEED)
        return train.index.to_numpy(), val.index.to_numpy()

    @property
    def labels(self) -> np.ndarray:
        """Integer age-group label per image."""
        return self.table["label"].to_numpy()


def _metadata_path(dataset_root: Path, dataset: str) -> Path:
    stem = "imdb" if dataset == "imdb" else "wiki"
    return dataset_root / f"{stem}.mat"


def cache_key(mat_path: Path, settings: dict, renderer_version: int | None = None) -> str:
    """Hash of the metadata file's identity and every setting that changes the output.

    ``renderer_version`` (mini-wiki only) tells apart faces drawn by another
    renderer: a rebuilt mini-wiki extracts with the same path and mtime.
    """
    stat = mat_path.stat()
    payload = {"version": CACHE_FORMAT_VERSION, "source": str(mat_path.resolve()),
               "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "settings": settings}
    if renderer_version is not None:
        payload["renderer_version"] = renderer_version
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def load_face_cache(dataset: str | None = None, image_size: int = 64, age_groups=DEFAULT_AGE_GROUPS,
                    margin: float = DEFAULT_MARGIN, workers: int | None = None, progress: bool = True,
                    rebuild: bool = False, min_face_score: float = 1.0, require_gender: bool = True,
                    dataset_root=None, remember: bool = True) -> FaceCache:
    """Cropped faces of ``dataset`` (default ``paths.dataset_name()``), from the cache when possible.

    Filters: one face with ``face_score >= min_face_score``, age 0-100, known
    gender if ``require_gender``, age inside one of ``age_groups`` (inclusive
    ranges -> labels 0, 1, ...). Faces are square crops with ``margin`` around
    the face box, resized to ``image_size``. ``rebuild=True`` ignores an
    existing cache. ``dataset_root`` points at an extracted ``*_crop`` folder
    instead of downloading. ``remember=False`` leaves the note of the last
    settings (:func:`latest_face_settings`, which later chapters follow) as it
    was: for a side cache, such as chapter 6's six age groups.
    """
    dataset = dataset or paths.dataset_name()
    groups = validate_age_groups(age_groups)
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    root = Path(dataset_root) if dataset_root else download_dataset(dataset, progress=progress)
    mat_path = _metadata_path(root, dataset)
    settings = {"dataset": dataset, "image_size": int(image_size), "age_groups": [list(g) for g in groups],
                "margin": float(margin), "min_face_score": float(min_face_score),
                "require_gender": bool(require_gender), "age_range": [0, 100], "single_face": True}
    folder = paths.cache_dir(dataset) / cache_key(mat_path, settings, renderer_version_of(root))
    faces = None if rebuild else _read_if_valid(folder, dataset, root, settings)
    if faces is None:
        with exclusive(folder.parent / BUILD_LOCK, f"building the {dataset} face cache"):
            # Another process may have built it while this one waited for the lock.
            faces = None if rebuild else _read_if_valid(folder, dataset, root, settings)
            if faces is None:
                for leftover in remove_leftovers(folder.parent, [STAGING_GLOB]):
                    print(f"removed {leftover}, left by an interrupted build")
                _build_cache(folder, root, mat_path, settings, workers, progress)
                faces = _read_cache(folder, dataset, root, settings)
    if remember:
        _remember_settings(dataset, settings)
    return faces


def _read_if_valid(folder: Path, dataset: str, root: Path, settings: dict) -> FaceCache | None:
    """The cache in ``folder``; None when there is none, or it is damaged or partly deleted (build it again)."""
    if not folder.exists():
        return None
    try:
        return _read_cache(folder, dataset, root, settings)
    except (OSError, ValueError, KeyError) as error:
        print(f"face cache {folder} is unreadable ({error}); rebuilding it")
        return None


LATEST_SETTINGS = "latest.json"


def _remember_settings(dataset: str, settings: dict) -> None:
    """Note the age groups and image size of the cache built last, for chapters that run after."""
    path = paths.cache_dir(dataset) / LATEST_SETTINGS
    note = json.dumps({"age_groups": settings["age_groups"], "image_size": settings["image_size"]})
    try:
        if path.is_file() and path.read_text() == note:
            return  # nothing to write (a read-only course home stays readable)
        write_atomically(path, note)
    except OSError as error:
        print(f"could not note these face settings in {path} ({error.strerror or error}); later chapters "
              "use the note that is there, or the course defaults")


def latest_face_settings(dataset: str | None = None) -> dict:
    """The age groups and image size of the face cache built last (chapter 1's choice).

    The course defaults when no cache was built yet, or when the note is not
    valid (it is plain JSON, checked like any other input: nothing in it runs).
    """
    dataset = dataset or paths.dataset_name()
    defaults = {"age_groups": DEFAULT_AGE_GROUPS, "image_size": 64}
    try:
        saved = json.loads((paths.cache_dir(dataset) / LATEST_SETTINGS).read_text())
        groups = validate_age_groups([tuple(group) for group in saved["age_groups"]])
        image_size = saved["image_size"]
        if not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size {image_size!r}")
    except FileNotFoundError:
        return defaults
    except (OSError, ValueError, TypeError, KeyError) as error:
        print(f"ignoring {LATEST_SETTINGS} in the face cache folder ({error}); using the course defaults")
        return defaults
    return {"age_groups": groups, "image_size": image_size}


def _build_cache(folder: Path, root: Path, mat_path: Path, settings: dict, workers, progress) -> None:
    metadata = read_imdb_wiki_metadata(mat_path)
    kept, funnel = filter_faces(metadata, min_face_score=settings["min_face_score"],
                                single_face=settings["single_face"], age_range=tuple(settings["age_range"]),
                                require_gender=settings["require_gender"])
    funnel.insert(0, "stage", "metadata")
    grouped = assign_age_groups(kept, [tuple(g) for g in settings["age_groups"]])
    rows = [funnel.assign(converted=0),
            pd.DataFrame([{"stage": "age groups", "rule": "outside every age group",
                           "removed": len(kept) - len(grouped), "converted": 0, "remaining": len(grouped)}])]

    boxes = grouped[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy()
    # A path that leaves the dataset folder is counted, never opened.
    files = [dataset_photo_path(root, p) for p in grouped["full_path"]]
    inside = np.array([file is not None for file in files], dtype=bool)
    size = settings["image_size"]
    images = np.zeros((len(files), size, size, 3), np.uint8)
    outcomes = pd.Series(NOT_A_DATASET_FILE, index=grouped.index, dtype=object)
    images[inside], outcomes[inside] = crop_faces([file for file in files if file is not None], boxes[inside], size,
                                                  settings["margin"], workers=workers, progress=progress)
    remaining = len(grouped)
    for rule in REJECTIONS + CONVERSIONS:
        count = int((outcomes == rule).sum())
        removed = count if rule in REJECTIONS else 0
        remaining -= removed
        rows.append(pd.DataFrame([{"stage": "images", "rule": rule, "removed": removed,
                                   "converted": count - removed, "remaining": remaining}]))
    usable = ~outcomes.isin(REJECTIONS).to_numpy()
    table = grouped[usable].reset_index(drop=True)
    table.insert(0, "identity", identity_keys(table))
    table["image_outcome"] = outcomes[usable].to_numpy()
    images = images[usable]
    assert set(table["image_outcome"]) <= {OK, *CONVERSIONS}
    funnel = pd.concat(rows, ignore_index=True)[FUNNEL_COLUMNS]

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    old = None
    try:
        np.save(staging / "images.npy", images, allow_pickle=False)
        (staging / "table.json").write_text(table.to_json(orient="table", index=False, double_precision=15))
        funnel.to_csv(staging / "funnel.csv", index=False)
        (staging / "settings.json").write_text(json.dumps(settings, indent=1, sort_keys=True))
        if folder.exists():  # rebuild=True: move the old cache aside (a reader keeps its open files), then replace
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
            os.replace(folder, old)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _read_cache(folder: Path, dataset: str, root: Path, settings: dict) -> FaceCache:
    images = np.load(folder / "images.npy", allow_pickle=False)
    table = pd.read_json(io.StringIO((folder / "table.json").read_text()), orient="table")
    for column in table.columns:  # JSON brings dates back as nanoseconds; the build made seconds
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            table[column] = table[column].astype("datetime64[s]")
    funnel = pd.read_csv(folder / "funnel.csv")
    if len(images) != len(table):
        raise ValueError(f"face cache {folder} is inconsistent ({len(images)} images, {len(table)} rows)")
    groups = tuple(tuple(g) for g in settings["age_groups"])
    return FaceCache(images=images, table=table, funnel=funnel, age_groups=groups, dataset=dataset,
                     dataset_root=root, path=folder, settings=settings)
