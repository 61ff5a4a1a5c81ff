"""mini-wiki: a small synthetic stand-in for IMDB-WIKI's ``wiki_crop`` that builds offline.

``build_mini_wiki`` writes ``mini_wiki_crop.tar`` holding ``wiki_crop/wiki.mat``
in the real struct layout, ``wiki_crop/NN/<id>_<dob>_<year>.jpg`` photos and
``wiki_crop/mini_wiki_identities.json`` (identity parameters and per-photo
seeds) so any photo can be re-rendered at another age: the ground truth that
real face-aging datasets never have.

About 1 photo in 20 carries one of the real dataset's defects (no face, a
low face score, a second face, impossible birth dates, 1x1 placeholders, grayscale or CMYK
JPEGs, truncated or missing files); some genders are unknown and some names
empty, as in the real file.

The sidecar records the ``RENDERER_VERSION`` that drew the photos; a mini-wiki
of another version is stale (``stale_reason``): ``download_dataset`` rebuilds
it, the face cache key changes with it, and ``render_ground_truth`` refuses it.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from tqdm.auto import tqdm

from .crops import DEFAULT_MARGIN, default_workers, jpeg_bytes, load_face_crop
from .filtering import DEFAULT_AGE_GROUPS
from .metadata import MATLAB_ORDINAL_OFFSET
from .synthetic_faces import RENDERER_VERSION, Identity, random_identity, render_photo

ARCHIVE_NAME = "mini_wiki_crop.tar"
SIDECAR_NAME = "mini_wiki_identities.json"
JPEG_QUALITY = 90
PHOTO_YEARS = (1940, 2015)

# Defects found in the real wiki.mat / wiki_crop, and how mini-wiki imitates them.
METADATA_DEFECTS = ("no_face", "low_score", "second_face", "age_negative", "age_over_100", "dob_invalid")
IMAGE_DEFECTS = ("placeholder", "grayscale", "cmyk", "truncated", "missing")
DEFECT_RATE = 1 / 20
UNKNOWN_GENDER_RATE = 0.03
EMPTY_NAME_RATE = 0.02

FIRST_NAMES = (
    "Ada Amara Ana Anders Aiko Amir Bea Bruno Carmen Chen Dara Diego Elif Emil Esi Farah Felix Grete Hana "
    "Hugo Ines Ivan Jana Jonas Kai Kemal Lena Luca Mara Mateo Mei Nadia Nils Noor Olga Omar Paulo Priya "
    "Rafael Rosa Sami Sara Taro Tess Umar Vera Viktor Wen Yara Yusuf Zeno Zoe Abebe Chiara Dmitri Femi "
    "Greta Hiro Ingrid Jomo Kofi Leila Malik Nia Oskar Pilar Quinn Ravi Sven Thandi"
).split()
LAST_NAMES = (
    "Mbeki Okafor Nakamura Silva Novak Larsen Haddad Rossi Kowalski Moreau Garcia Ivanova Tanaka Khan "
    "Osei Schmidt Jensen Costa Petrov Dubois Alvarez Yilmaz Nguyen Park Lindqvist Mensah Fischer Romano "
    "Hassan Kim Horvat Ortiz Sato Weber Adeyemi Berg Castro Demir Eriksen Fontaine Gupta Hoffmann Ito "
    "Jovanovic Keller Lopez Mwangi Nowak Olsen Perez Quispe Reyes Sousa Takahashi Usman Varga Wojcik "
    "Xu Yamamoto Zhang Abara Bianchi Celik Dlamini Ekwueme Farouk"
).split()


def _pick_names(rng: np.random.Generator, count: int) -> list[str]:
    combos = len(FIRST_NAMES) * len(LAST_NAMES)
    if count > combos:
        raise ValueError(f"at most {combos} identities can be named, asked for {count}")
    picks = rng.choice(combos, size=count, replace=False)
    return [f"{FIRST_NAMES[i // len(LAST_NAMES)]} {LAST_NAMES[i % len(LAST_NAMES)]}" for i in picks]


def _sample_ages(rng: np.random.Generator, count: int) -> np.ndarray:
    """Mixture giving about 2000 faces aged 20-30 and 1200 aged 40-50 per 6000 photos after cleaning.

    26% uniform in 20-30, 11% in 40-50, the rest uniform in 15-80 (which also
    lands one sixth in each group): imbalanced like the real wiki.
    """
    component = rng.choice(3, size=count, p=[0.26, 0.11, 0.63])
    ages = np.where(component == 0, rng.integers(20, 31, count),
                    np.where(component == 1, rng.integers(40, 51, count), rng.integers(15, 81, count)))
    return ages.astype(np.int64)


def _in_groups(age: int, groups=DEFAULT_AGE_GROUPS) -> bool:
    return any(low <= age <= high for low, high in groups)


def plan_entries(n_entries: int, seed: int) -> tuple[dict, list[dict]]:
    """Decide every identity and photo (no rendering) -> (identities, entries)."""
    if n_entries < 20:
        raise ValueError(f"n_entries must be at least 20 to hold every defect kind, got {n_entries}")
    rng = np.random.default_rng(seed)
    n_people = max(2, n_entries // 4)
    names = _pick_names(rng, n_people)
    identities = {}
    for name in names:
        identity = random_identity(rng)
        identity.extra = {"gender_known": bool(rng.random() >= UNKNOWN_GENDER_RATE),
                          "name_known": bool(rng.random() >= EMPTY_NAME_RATE)}
        identities[name] = identity
    for flag in ("gender_known", "name_known"):  # even a small build has some of each, like the real file
        if all(identity.extra[flag] for identity in identities.values()):
            identities[names[int(rng.integers(n_people))]].extra[flag] = False
    # Everyone gets one photo; the rest go to random people (several ages each).
    owners = np.concatenate([np.arange(n_people), rng.integers(0, n_people, n_entries - n_people)])
    owners = rng.permutation(owners)
    ages = _sample_ages(rng, n_entries)
    ids = 10_000_000 + np.cumsum(rng.integers(1, 3000, n_entries))
    photo_seeds = rng.integers(0, 2**31 - 1, n_entries)

    # A birth date per person that makes all their photos fall in PHOTO_YEARS.
    births = {}
    for person in range(n_people):
        person_ages = ages[owners == person]
        first = PHOTO_YEARS[0] - int(person_ages.min())
        last = PHOTO_YEARS[1] - 1 - int(person_ages.max())
        year = int(rng.integers(first, max(first, last) + 1))
        births[person] = date.fromordinal(date(year, 1, 1).toordinal() + int(rng.integers(0, 365)))

    defects = _plan_defects(rng, ages, owners, identities, names)
    entries = []
    for i in range(n_entries):
        person = int(owners[i])
        birth = births[person]
        age = int(ages[i])
        # 1 July rule: born in July or later -> the birthday comes after the photo date.
        photo_taken = birth.year + age + (1 if birth.month >= 7 else 0)
        dob = birth.toordinal() + MATLAB_ORDINAL_OFFSET
        defect = defects.get(i)
        if defect == "age_negative":
            dob = date(photo_taken + 3, birth.month, min(birth.day, 28)).toordinal() + MATLAB_ORDINAL_OFFSET
        elif defect == "age_over_100":
            dob = date(11, birth.month, min(birth.day, 28)).toordinal() + MATLAB_ORDINAL_OFFSET
        elif defect == "dob_invalid":
            dob = 0
        ordinal = dob - MATLAB_ORDINAL_OFFSET
        dob_text = date.fromordinal(ordinal).isoformat() if ordinal >= 1 else "0000-00-00"
        entry_id = int(ids[i])
        entries.append({
            "full_path": f"{entry_id % 100:02d}/{entry_id}_{dob_text}_{photo_taken}.jpg",
            "identity": names[person], "age": age, "photo_seed": int(photo_seeds[i]),
            "photo_taken": int(photo_taken), "dob": int(dob), "defect": defect,
        })
    return {name: identity.to_dict() for name, identity in identities.items()}, entries


def _plan_defects(rng, ages, owners, identities, names) -> dict[int, str]:
    """About 1 in 20 photos gets a defect; every kind occurs at least once.

    Image defects go to photos the default pipeline keeps (known gender, age in
    a default group), so they show up in the image stage of the funnel.
    """
    n = len(ages)
    kinds = METADATA_DEFECTS + IMAGE_DEFECTS
    count = max(len(kinds), int(round(n * DEFECT_RATE)))
    assigned = [kinds[i % len(kinds)] for i in range(count)]
    keepable = np.array([_in_groups(int(a)) and identities[names[o]].extra["gender_known"]
                         for a, o in zip(ages, owners)])
    image_pool = list(rng.permutation(np.flatnonzero(keepable)))
    other_pool = list(rng.permutation(np.flatnonzero(~keepable)))
    defects = {}
    for kind in assigned:
        pool = image_pool if kind in IMAGE_DEFECTS or not other_pool else other_pool
        if not pool:
            pool = image_pool or other_pool
        defects[int(pool.pop())] = kind
    return defects


def _render_entry(args) -> tuple[bytes | None, tuple]:
    """One photo's file bytes (None for a missing file) and its face box."""
    identity, age, photo_seed, defect = args
    photo, box = render_photo(identity, age, photo_seed, with_face=defect != "no_face")
    if defect == "missing":
        return None, box
    if defect == "placeholder":
        return jpeg_bytes(Image.new("RGB", (1, 1), (0, 0, 0)), JPEG_QUALITY), box
    if defect == "grayscale":
        photo = photo.convert("L")
    elif defect == "cmyk":
        photo = photo.convert("CMYK")
    data = jpeg_bytes(photo, JPEG_QUALITY)
    return (data[: len(data) // 2] if defect == "truncated" else data), box


def _render_chunk(chunk) -> list:
    return [_render_entry(args) for args in chunk]


def cell_row(values) -> np.ndarray:
    """A 1xN MATLAB cell array (what ``scipy.io.savemat`` writes for an object array) of ``values``."""
    values = list(values)
    out = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        out[0, i] = value
    return out


def _mat_bytes(identities: dict, entries: list[dict], boxes: list, seed: int) -> bytes:
    """wiki.mat in the real layout (struct ``wiki``; cells for strings and boxes)."""
    rng = np.random.default_rng(seed + 1)
    n = len(entries)
    face_score = np.round(rng.uniform(1.2, 6.5, n), 4)
    second = np.full(n, np.nan)
    locations, names, genders = [], [], []
    for i, entry in enumerate(entries):
        identity = identities[entry["identity"]]
        known = identity["extra"]
        defect = entry["defect"]
        box = boxes[i]
        if defect == "no_face":
            face_score[i], box = -np.inf, (1.0, 1.0, 1.0, 1.0)
        elif defect == "low_score":
            face_score[i] = round(float(rng.uniform(0.05, 0.95)), 4)
        elif defect == "second_face":
            second[i] = round(float(rng.uniform(1.0, 3.0)), 4)
        locations.append(np.array([box], dtype=np.float64))
        names.append(np.array([entry["identity"]]) if known["name_known"] else np.array([], dtype="<U1"))
        genders.append((1.0 if identity["gender"] == "male" else 0.0) if known["gender_known"] else np.nan)
    struct = {
        "dob": np.array([[e["dob"] for e in entries]], dtype=np.int32),
        "photo_taken": np.array([[e["photo_taken"] for e in entries]], dtype=np.uint16),
        "full_path": cell_row(np.array([e["full_path"]]) for e in entries),
        "gender": np.array([genders], dtype=np.float64),
        "name": cell_row(names),
        "face_location": cell_row(locations),
        "face_score": face_score[None, :],
        "second_face_score": second[None, :],
    }
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"wiki": struct}, format="5")
    data = bytearray(buffer.getvalue())
    # The 116-byte header text holds a creation time; fix it so equal seeds give equal bytes.
    header = b"MATLAB 5.0 MAT-file, written by course_utils mini-wiki"
    data[:116] = header.ljust(116, b" ")
    return bytes(data)


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1_500_000_000, 0o644
    archive.addfile(info, io.BytesIO(data))


def build_mini_wiki(out_dir, n_entries: int = 6000, seed: int = 0, workers: int | None = None,
                    progress: bool = True) -> Path:
    """Generate ``out_dir/mini_wiki_crop.tar`` (deterministic from ``seed``) and return its path.

    The archive is written to a temporary file and renamed at the end, so an
    interrupted build leaves no archive behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identities, entries = plan_entries(n_entries, seed)
    jobs = [(identities[e["identity"]], e["age"], e["photo_seed"], e["defect"]) for e in entries]
    chunks = [jobs[i:i + 50] for i in range(0, len(jobs), 50)]
    workers = default_workers() if workers is None else workers
    archive_path = out_dir / ARCHIVE_NAME
    handle, tmp_name = tempfile.mkstemp(prefix=f".{ARCHIVE_NAME}.", suffix=".tmp", dir=out_dir)  # never a link
    tmp_path = Path(tmp_name)
    bar = tqdm(total=n_entries, desc="Rendering mini-wiki", unit="photo", disable=not progress)
    boxes = []
    try:
        with os.fdopen(handle, "wb") as out, \
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive, \
                ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            # map() yields in submission order, so the archive is identical whatever the scheduling.
            for results in pool.map(_render_chunk, chunks):
                for data, box in results:
                    entry = entries[len(boxes)]
                    boxes.append(box)
                    if data is not None:
                        _add_file(archive, f"wiki_crop/{entry['full_path']}", data)
                bar.update(len(results))
            _add_file(archive, "wiki_crop/wiki.mat", _mat_bytes(identities, entries, boxes, seed))
            sidecar = {"seed": seed, "jpeg_quality": JPEG_QUALITY, "renderer_version": RENDERER_VERSION,
                       "identities": identities,
                       "entries": {e["full_path"]: e for e in entries}}
            _add_file(archive, f"wiki_crop/{SIDECAR_NAME}",
                      json.dumps(sidecar, sort_keys=True, indent=0).encode())
        os.replace(tmp_path, archive_path)
    finally:
        bar.close()
        if tmp_path.exists():
            tmp_path.unlink()
    return archive_path


@lru_cache(maxsize=4)
def _load_sidecar(path: str, stamp: tuple) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_sidecar(dataset_root) -> dict:
    """The identities and per-photo seeds of an extracted mini-wiki (``.../wiki_crop``)."""
    path = Path(dataset_root) / SIDECAR_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: ground truth exists only for mini-wiki")
    stat = path.stat()
    # Extraction gives every file the archive's fixed mtime; ctime tells a rebuilt sidecar apart.
    return _load_sidecar(str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))


def sidecar_renderer_version(sidecar: dict) -> int:
    """The renderer version that drew a mini-wiki (1: archives made before versions were recorded)."""
    return int(sidecar.get("renderer_version", 1))


def renderer_version_of(dataset_root) -> int | None:
    """Renderer version of an extracted mini-wiki folder; None when it holds no mini-wiki sidecar."""
    try:
        return sidecar_renderer_version(read_sidecar(dataset_root))
    except FileNotFoundError:
        return None


def stale_reason(path) -> str | None:
    """Why the mini-wiki at ``path`` (extracted folder or archive) is stale, or None if it is current.

    A folder or archive without a sidecar, or one that cannot be read, is not
    judged here (None): extraction and loading report those problems.
    """
    path = Path(path)
    try:
        if path.is_dir():
            version = renderer_version_of(path)
        else:
            with tarfile.open(path, mode="r:") as tar:  # plain tar only, as download.safe_extract reads it
                handle = tar.extractfile(f"wiki_crop/{SIDECAR_NAME}")
                version = sidecar_renderer_version(json.load(handle))
    except (OSError, KeyError, ValueError, tarfile.TarError, EOFError):
        return None
    if version is None or version == RENDERER_VERSION:
        return None
    return (f"it was drawn by mini-wiki renderer version {version}, and this course draws version "
            f"{RENDERER_VERSION}, which ages faces differently")


def render_ground_truth(dataset_root, full_path: str, target_age: float, image_size: int = 64,
                        margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Re-render a mini-wiki photo at ``target_age`` and crop it exactly like the face cache.

    Same person, same photo (framing, pose, light), only the age changes; the
    photo goes through the same JPEG encoding and cropping as the cache, so at
    the photo's own age this equals the cached face. Returns uint8 (H, W, 3).
    """
    sidecar = read_sidecar(dataset_root)
    version = sidecar_renderer_version(sidecar)
    if version != RENDERER_VERSION:
        raise RuntimeError(f"{dataset_root} was drawn by mini-wiki renderer version {version}, but this course "
                           f"draws version {RENDERER_VERSION}, so its ground truth would not match its photos; "
                           f"delete that folder and its archive, or call download_dataset('mini-wiki') to rebuild them")
    entry = sidecar["entries"].get(str(full_path))
    if entry is None:
        raise KeyError(f"{full_path!r} is not a photo of this mini-wiki")
    identity = Identity.from_dict(sidecar["identities"][entry["identity"]])
    photo, box = render_photo(identity, target_age, entry["photo_seed"])
    data = jpeg_bytes(photo, sidecar.get("jpeg_quality", JPEG_QUALITY))
    crop, outcome = load_face_crop(io.BytesIO(data), box, image_size, margin)
    if crop is None:
        raise RuntimeError(f"re-rendered photo of {full_path} could not be cropped ({outcome})")
    return crop
