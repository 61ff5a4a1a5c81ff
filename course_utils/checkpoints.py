"""Safe, atomic checkpoints made of tensors and plain Python values only.

A checkpoint is a dict with ``kind`` ("gan", "encoder", "classifier", "age_judge"),
``config`` (primitives that rebuild the models) and ``models`` (name ->
state_dict), plus optionally ``optimizers``, ``step``, ``rng`` and ``history``.
It is written to a temporary file beside the target and moved into place with
``os.replace``, so an interrupted save never leaves a half-written checkpoint.
It is read with ``torch.load(weights_only=True)``, which refuses pickled code.
A SHA-256 of the contents (every tensor's bytes, dtype and shape, and every
plain value) is stored under ``DIGEST_KEY`` and checked on load, so a damaged
file is refused instead of loading different weights. The file is fsynced
before the rename. Before anything is read, the zip's directory is checked:
torch.save stores tensors uncompressed, so a compressed member (which could
inflate to gigabytes) or more than ``MAX_CHECKPOINT_BYTES`` of members is
refused. After loading, NaN or infinite weights are refused: a generator with
them draws black images.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from .files import temporary_beside

KINDS = ("gan", "encoder", "classifier", "age_judge")
DIGEST_KEY = "sha256"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's (zip) format; save_checkpoint never writes anything else
# The course's largest model (width 128 at 128 px, with Adam's states and an EMA copy) is 1.3 GB.
MAX_CHECKPOINT_BYTES = 2 << 30


class CheckpointError(ValueError):
    """The file is not a readable course checkpoint (empty, not a checkpoint, damaged)."""


def content_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's contents: tensor bytes, dtypes and shapes, and plain values, in key order."""
    digest = hashlib.sha256()

    def walk(value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{where}:tensor:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            digest.update(f"{where}:mapping:{len(value)}\n".encode())
            for key in sorted(value, key=repr):
                walk(value[key], f"{where}/{key!r}")
        elif isinstance(value, (list, tuple)):
            digest.update(f"{where}:{type(value).__name__}:{len(value)}\n".encode())
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
        else:
            digest.update(f"{where}:{value!r}\n".encode())

    walk(obj, "")
    return digest.hexdigest()


def save_checkpoint(obj: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` to ``path`` atomically; returns the path.

    The data goes to a temporary file in the same folder first (same file
    system, so ``os.replace`` is atomic); on any failure the temporary file is
    removed and an existing checkpoint at ``path`` is left as it was.
    """
    path = Path(path)
    if obj.get("kind") not in KINDS:
        raise ValueError(f"checkpoint kind must be one of {KINDS}, got {obj.get('kind')!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = temporary_beside(path)  # also removes those a killed save left behind
    os.close(handle)
    contents = {key: value for key, value in obj.items() if key != DIGEST_KEY}
    contents[DIGEST_KEY] = content_digest(contents)
    try:
        torch.save(contents, tmp_name)
        with open(tmp_name, "rb+") as handle:  # on disk before the rename, so a crash cannot leave zeros
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        _fsync_folder(path.parent)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike, expected_kind: str, map_location: str | torch.device = "cpu"
) -> dict:
    """Read a checkpoint saved by :func:`save_checkpoint` and check its kind.

    Only tensors and plain values are accepted: a file that needs arbitrary
    pickled objects (which could run code) is refused with a RuntimeError.
    An empty, foreign or damaged file (including one whose contents no longer
    match the stored SHA-256) raises ``CheckpointError``, a ValueError naming
    the file. Files saved before digests were stored load unchecked.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with open(path, "rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if not head.startswith(_ZIP_MAGIC):
        what = "is empty (0 bytes)" if not head else f"starts with {head!r}"
        raise CheckpointError(f"{path} is not a course checkpoint: it {what}, not a file written by "
                              "save_checkpoint")
    _check_declared_sizes(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise RuntimeError(
            f"refusing to load {path}: it is not a plain-weights checkpoint "
            f"(it holds pickled objects that could run code). Details: {error}"
        ) from None
    except Exception as error:  # torch/zip/pickle raise many types for a damaged file
        raise CheckpointError(f"{path} is damaged and cannot be read as a checkpoint "
                              f"({type(error).__name__}: {error}); save it again") from None
    if not isinstance(checkpoint, dict) or "kind" not in checkpoint:
        raise CheckpointError(f"{path} is not a course checkpoint (no 'kind' entry)")
    stored = checkpoint.pop(DIGEST_KEY, None)
    if stored is not None and stored != content_digest(checkpoint):
        raise CheckpointError(f"{path} is damaged: its contents do not match the SHA-256 stored when it "
                              "was saved (a changed byte); refusing it. Save or download it again")
    if checkpoint["kind"] != expected_kind:
        raise ValueError(
            f"{path} is a {checkpoint['kind']!r} checkpoint, but a {expected_kind!r} checkpoint was expected"
        )
    for key in ("config", "models"):
        if key not in checkpoint:
            raise ValueError(f"{path} has no {key!r} entry")
    _check_finite(checkpoint["models"], path)
    return checkpoint


def _check_declared_sizes(path: Path) -> None:
    """Refuse compressed members and a total beyond ``MAX_CHECKPOINT_BYTES``, from the zip's directory alone."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is damaged and cannot be read as a checkpoint ({error}); save it again") from None
    compressed = [m for m in members if m.compress_type != zipfile.ZIP_STORED]
    if compressed:
        member = max(compressed, key=lambda m: m.file_size)
        raise CheckpointError(f"refusing {path}: its member {member.filename} is compressed ({member.compress_size:,} "
                              f"bytes that claim to unpack to {member.file_size:,}); torch.save stores tensors "
                              "uncompressed, so save_checkpoint did not write it. Nothing was loaded")
    declared = sum(m.file_size for m in members)
    if declared > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"refusing {path}: its tensors declare {declared / 1e9:.1f} GB, more than any course "
                              f"model ({MAX_CHECKPOINT_BYTES / 1e9:.1f} GB at most). Nothing was loaded")


def _check_finite(models: Mapping[str, Any], path: Path) -> None:
    """Refuse weights that are NaN or infinite (a diverged run): the models would draw black images."""
    for model_name, state in models.items():
        for key, value in (state.items() if isinstance(state, Mapping) else ()):
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
                raise CheckpointError(f"refusing {path}: {model_name}.{key} holds NaN or infinite weights (the run "
                                      "diverged); a model with them draws black images. Train again, or use an "
                                      "earlier checkpoint")


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); where folders cannot be opened there is nothing to do."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def check_config(saved: Mapping[str, Any], wanted: Mapping[str, Any], keys: Iterable[str], what: str) -> None:
    """Raise a ValueError naming every key in ``keys`` where ``saved`` and ``wanted`` differ."""
    mismatches = [
        f"{key}: checkpoint has {saved.get(key)!r}, expected {wanted.get(key)!r}"
        for key in keys
        if saved.get(key) != wanted.get(key)
    ]
    if mismatches:
        raise ValueError(f"{what} does not fit the models: " + "; ".join(mismatches))


def capture_rng_state() -> dict:
    """Every global random generator's state, as tensors and plain values (weights_only-safe)."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the generator states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
