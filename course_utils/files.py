"""Writing in a course home that other processes (a second notebook) or people may share.

* ``exclusive``: one builder at a time. A lock file (the ``filelock`` package:
  ``flock`` on Linux and macOS, a Windows lock elsewhere, never through a link)
  makes a second builder wait, saying so, until the first is done.
* ``write_atomically``: a temporary file made by ``mkstemp`` beside the target
  (a fresh name opened with O_EXCL, so a link planted in advance is never
  written through), then ``os.replace``; a reader sees the old file or the new.
  ``temporary_beside`` makes such a name for writers that need a path
  (torch.save); its name holds the writer's process id, so
  ``remove_stale_temporaries`` knows one whose writer was killed.
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
import time
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


STALE_AFTER_S = 600  # a temporary file this old whose writer is gone was left by a killed run


def temporary_beside(path) -> tuple[int, str]:
    """``mkstemp`` beside ``path`` -> (open descriptor, name); stale ones of earlier runs are removed first."""
    path = Path(path)
    remove_stale_temporaries(path)
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)


def remove_stale_temporaries(path) -> list[Path]:
    """Delete ``temporary_beside(path)`` files whose writing process is gone and that are old (POSIX only)."""
    path, removed = Path(path), []
    if os.name != "posix":  # os.kill(pid, 0) would signal the process on Windows
        return removed
    for temporary in path.parent.glob(f".{path.name}.*.tmp"):
        pid = temporary.name[len(path.name) + 2:].split(".")[0]
        try:
            if not pid.isdigit() or time.time() - temporary.lstat().st_mtime < STALE_AFTER_S:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its writer is gone
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
        except OSError:  # alive (PermissionError: another user's process), or already removed
            pass
    return removed


def write_atomically(path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (str is written as UTF-8) at once, through a fresh temporary file."""
    path = Path(path)
    handle, temporary = temporary_beside(path)
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
