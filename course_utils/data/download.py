"""Getting a dataset onto disk: resumable download, verification, safe extraction.

``download_dataset("wiki" | "imdb" | "mini-wiki")`` returns the extracted
``<name>_crop`` folder. mini-wiki is generated locally (no network). The real
archives are fetched over HTTP with resume (``Range``) into a ``.part`` file,
checked (size, and SHA-256 when known), and extracted member by member checks
into a temporary folder that is renamed into place only when all went well.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .. import paths

DEFAULT_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/static"
BASE_URL_ENV = "FACE_AGING_DATA_URL"
CHUNK_BYTES = 1 << 20
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class DatasetSource:
    """Where an archive comes from and what it unpacks to."""

    archive: str      # file name on the server / on disk
    folder: str       # top folder inside the archive
    approx_size: str  # for the offline message
    size: int | None = None  # exact bytes when known; else the server must say (Content-Length)


class CorruptArchive(RuntimeError):
    """The archive is damaged or not the expected one (not a tar, cut short, no expected folder)."""


class SizeUnknown(RuntimeError):
    """The server did not say how large the file is, so completeness cannot be checked."""


class UnsafeArchive(RuntimeError):
    """The archive holds members that could write outside the target (links, .., devices)."""


SOURCES = {
    "wiki": DatasetSource("wiki_crop.tar", "wiki_crop", "about 1 GB"),
    "imdb": DatasetSource("imdb_crop.tar", "imdb_crop", "about 7 GB"),
    "mini-wiki": DatasetSource("mini_wiki_crop.tar", "wiki_crop", "about 100 MB, generated"),
}


def dataset_folder(name: str, root=None) -> Path:
    """Where ``download_dataset`` puts the extracted folder of ``name``."""
    source = _source(name)
    return Path(root or paths.datasets_dir()) / name / source.folder


def _source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(SOURCES)}")
    return SOURCES[name]


def download_dataset(name: str, root=None, progress: bool = True, *, base_url: str | None = None,
                     sha256: str | None = None, expected_size: int | None = None,
                     mini_wiki_entries: int = 6000) -> Path:
    """Make sure dataset ``name`` is extracted and return its ``<name>_crop`` folder.

    Does nothing when the folder exists, except that a mini-wiki drawn by
    another renderer version (an older course) is deleted and built again,
    archive and folder. ``root`` defaults to
    ``paths.datasets_dir()``. For wiki/imdb the archive is fetched from
    ``base_url`` (default: ``$FACE_AGING_DATA_URL`` or the ETH server);
    ``sha256``/``expected_size`` make the check stricter.
    """
    source = _source(name)
    target = dataset_folder(name, root)
    home = target.parent
    archive = home / source.archive
    if name == "mini-wiki":
        _remove_stale_mini_wiki(target, archive)
    if target.exists():
        return target
    home.mkdir(parents=True, exist_ok=True)
    for round_ in range(2):  # a corrupt archive is moved aside and fetched once more
        if not archive.exists():
            _obtain(name, source, archive, progress, base_url, sha256, expected_size, mini_wiki_entries)
        try:
            safe_extract(archive, home, expected_folder=source.folder)
        except CorruptArchive as error:
            if target.exists():  # another process (a second notebook) extracted it meanwhile
                return target
            aside = _move_aside(archive)
            if round_:
                raise CorruptArchive(f"{error}; moved it to {aside}. A fresh download is broken too: "
                                     f"download {source.archive} by hand and put it at {archive}") from error
            print(f"{archive} is not a usable archive ({error}); moved it to {aside} and fetching it again")
            continue
        except RuntimeError:
            if target.exists():
                return target
            raise
        break
    if not target.is_dir():
        raise CorruptArchive(f"extracting {archive} gave no {source.folder}/ folder in {home}")
    return target


def _remove_stale_mini_wiki(target: Path, archive: Path) -> None:
    """Delete a generated mini-wiki folder and archive drawn by another renderer version, saying why."""
    from .mini_wiki import stale_reason

    # The folder is what gets used; the archive matters only when there is no folder to use.
    path = target if target.exists() else archive
    reason = stale_reason(path) if path.exists() else None
    if reason:
        print(f"Rebuilding mini-wiki: {path} is out of date: {reason}.", flush=True)
        if target.exists():
            shutil.rmtree(target)
        archive.unlink(missing_ok=True)


def _obtain(name, source, archive, progress, base_url, sha256, expected_size, mini_wiki_entries) -> None:
    """Build (mini-wiki) or download the archive of ``name`` to ``archive``."""
    if name == "mini-wiki":
        from .mini_wiki import build_mini_wiki

        build_mini_wiki(archive.parent, n_entries=mini_wiki_entries, progress=progress)
        return
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{source.archive}"
    try:
        fetch(url, archive, progress=progress, sha256=sha256,
              expected_size=expected_size if expected_size is not None else source.size)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise RuntimeError(
            f"Could not download {url} ({error}).\n"
            f"Download it by hand ({source.approx_size}) and put it at {archive}, "
            f"then run this again; or set FACE_AGING_DATASET=mini-wiki to use the "
            f"embedded dataset, which works offline."
        ) from error


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to a free ``<name>.bad-<n>`` beside it (kept for inspection, never reused)."""
    for n in range(1, 1000):
        aside = path.with_name(f"{path.name}.bad-{n}")
        if not aside.exists():
            os.replace(path, aside)
            return aside
    raise RuntimeError(f"too many {path.name}.bad-* files beside {path}; delete them")


def _expected_total(response, offset: int) -> int | None:
    """Full size of the resource from Content-Range (resumed) or Content-Length (fresh)."""
    content_range = response.headers.get("Content-Range")
    if response.status == 206 and content_range:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
        if not match or int(match.group(1)) != offset:
            raise RuntimeError(f"server answered the range request with {content_range!r}")
        return int(match.group(3)) if match.group(3) != "*" else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _total_from_416(error: urllib.error.HTTPError) -> int | None:
    """The full size from a 416 answer's ``Content-Range: bytes */N``, if the server sent it."""
    match = re.match(r"bytes \*/(\d+)", (error.headers or {}).get("Content-Range", "") or "")
    return int(match.group(1)) if match else None


def fetch(url: str, destination, progress: bool = True, sha256: str | None = None,
          expected_size: int | None = None, attempts: int = MAX_ATTEMPTS) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.part``, resuming cut-off transfers.

    The file is accepted only when its full size is known (``expected_size``,
    Content-Length or Content-Range) and matched. Network failures, including
    a transfer that keeps stopping early, raise ``URLError`` and keep the
    .part for a later resume; a .part that is already complete is finished
    without asking the server again. A wrong size or SHA-256 raises
    RuntimeError and deletes the .part (its bytes are wrong, not missing).
    """
    destination = Path(destination)
    part = destination.with_name(destination.name + ".part")
    total = expected_size
    bar = tqdm(desc=f"Downloading {destination.name}", unit="B", unit_scale=True, disable=not progress)
    try:
        for attempt in range(attempts):
            offset = part.stat().st_size if part.exists() else 0
            if total is not None and offset >= total:
                break  # complete (or too long: _verify says so)
            request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    if response.status == 200 and offset:
                        offset = 0  # server ignored Range: start over
                    served_total = _expected_total(response, offset)
                    if served_total is not None:
                        if expected_size is not None and served_total != expected_size:
                            raise RuntimeError(f"{url} is {served_total} bytes, expected {expected_size}")
                        total = served_total
                    if total is None or (response.status == 206 and not response.headers.get("Content-Range")):
                        raise SizeUnknown(
                            f"{url} was served without its size (no Content-Length), so a cut-off "
                            f"transfer cannot be told from a complete one; refusing it. Pass "
                            f"expected_size=..., or download it by hand to {destination}")
                    bar.reset(total=total)
                    bar.update(offset)
                    with open(part, "ab" if offset else "wb") as out:
                        while chunk := response.read(CHUNK_BYTES):
                            out.write(chunk)
                            bar.update(len(chunk))
                        out.flush()
                        os.fsync(out.fileno())
            except urllib.error.HTTPError as error:
                if error.code != 416 or not offset:
                    raise
                served_total = _total_from_416(error)
                if served_total is not None and total in (None, served_total):
                    total = served_total
                    if offset == total:
                        break  # the .part was already complete
                # The server will not resume this .part: keep its bytes aside, start again.
                aside = _move_aside(part)
                print(f"{url} refused to resume {part} ({offset} bytes; HTTP 416); moved it to {aside}")
                continue
            except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
                if attempt == attempts - 1:
                    raise urllib.error.URLError(f"transfer kept failing: {error}; {part} is kept "
                                                f"and the next run resumes it") from error
                continue
            if total is not None and part.stat().st_size >= total:
                break
        size = part.stat().st_size if part.exists() else 0
        if total is None or size < total:
            raise urllib.error.URLError(
                f"the transfer stopped {attempts} times, at {size} of {total or 'unknown'} bytes; "
                f"{part} is kept and the next run resumes it")
        _verify(part, url, total, sha256)
    except SizeUnknown:
        raise  # the .part's bytes are not known to be wrong: keep them
    except RuntimeError:
        part.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    os.replace(part, destination)
    return destination


def _verify(part: Path, url: str, total: int | None, sha256: str | None) -> None:
    size = part.stat().st_size if part.exists() else 0
    if total is not None and size != total:
        raise RuntimeError(f"download of {url} is {size} bytes but should be {total}; refusing it")
    if sha256:
        digest = hashlib.sha256()
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
                digest.update(block)
        if digest.hexdigest() != sha256.lower():
            raise RuntimeError(f"download of {url} has SHA-256 {digest.hexdigest()}, expected {sha256}; "
                               "refusing it")


def _check_member(member: tarfile.TarInfo, expected_folder: str | None) -> None:
    """Refuse members that could write outside the target folder: every link, '..', absolute, special."""
    name = member.name
    pure = PurePosixPath(name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or pure.is_absolute():
        raise UnsafeArchive(f"archive member {name!r} has an absolute path; refusing the archive")
    if ".." in pure.parts or "\\" in name:
        raise UnsafeArchive(f"archive member {name!r} leaves the target folder; refusing the archive")
    if member.issym() or member.islnk():
        # Link chains defeat any text check of the target (CVE-2025-4517); real archives hold none.
        raise UnsafeArchive(f"archive member {name!r} links to {member.linkname!r}; links can lead "
                            "outside the target (links outside are how tar attacks work), so every "
                            "link is refused; refusing the archive")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"archive member {name!r} is a device or special file; refusing the archive")
    if expected_folder and pure.parts and pure.parts[0] != expected_folder:
        raise CorruptArchive(f"archive member {name!r} is outside {expected_folder}/; "
                             "this is not the expected archive")


def safe_extract(archive, destination, expected_folder: str | None = None) -> Path:
    """Extract a tar into ``destination`` after checking every member; all or nothing.

    Only regular files and folders are accepted (``UnsafeArchive`` otherwise);
    a file that is not a tar, or holds no ``expected_folder``, raises
    ``CorruptArchive``. Members are extracted into a temporary folder next to
    ``destination`` and moved into place at the end, so a refused or failed
    extraction leaves nothing behind.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=destination))
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, expected_folder)
            tops = sorted({PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts})
            if not tops or (expected_folder and expected_folder not in tops):
                raise CorruptArchive(f"{archive} holds no {expected_folder or 'files'}/")
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: a second line of defence
                tar.extractall(staging, members=members, filter="data")
            else:  # only plain files and folders with safe names are left to extract
                tar.extractall(staging, members=members)
        for top in tops:
            if (destination / top).exists():
                raise RuntimeError(f"{destination / top} already exists; remove it to extract again")
            os.replace(staging / top, destination / top)
    except (tarfile.TarError, EOFError) as error:
        raise CorruptArchive(f"{archive} is not a valid tar archive ({error})") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
