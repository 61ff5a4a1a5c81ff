"""Writing in a course home that other processes (a second notebook) or people may share.

* ``exclusive``: one builder at a time. A lock file (the ``filelock`` package:
  ``flock`` on Linux and macOS, a Windows lock elsewhere, never through a link)
  makes a second builder wait, saying so, until the first is done.
* ``write_atomically``: a temporary file made by ``mkstemp`` beside the target
  (a fresh name opened with O_EXCL, so a link planted in advance is never
  written through), then ``os.replace``; a reader sees the old file or the new.
* ``open_no_follow``: a fixed name that must survive between runs (a resumable
  ``.part`` download) is opened with O_NOFOLLOW.
* ``remove_leftovers``: what a killed run left behind (staging folders,
  temporary files), removed by the next run while it holds the lock.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout


@contextlib.contextmanager
def exclusive(lock_path, doing: str):
    """Hold the lock file ``lock_path`` for the block; if another process holds it, say that it is ``doing``
    something and wait for it."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"Another notebook or process is {doing}; waiting for it to finish (lock: {lock_path}).", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def write_atomically(path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (str is written as UTF-8) at once, through a fresh temporary file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def open_no_follow(path, append: bool):
    """Open ``path`` for binary writing (appending, or from empty) without ever writing through a link."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o644), "ab" if append else "wb")


def remove_leftovers(folder, patterns) -> list[Path]:
    """Delete what matches any glob of ``patterns`` in ``folder`` (folders with their contents; a link as a link).

    Call it only while holding the ``exclusive`` lock of whatever writes there:
    then nothing that matches can belong to a run still going.
    """
    removed = []
    for pattern in patterns:
        for path in Path(folder).glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
