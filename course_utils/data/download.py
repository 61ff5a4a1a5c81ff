"""Getting a dataset onto disk: resumable download, verification, safe extraction.

``download_dataset("wiki" | "imdb" | "mini-wiki")`` returns the extracted
``<name>_crop`` folder. mini-wiki is generated locally (no network). The real
archives are fetched over HTTP with resume (``Range``) into a ``.part`` file,
checked (size, and SHA-256 when known), and extracted member by member checks
into a temporary folder that is renamed into place only when all went well.

Nothing an archive or a server says can fill the disk: an archive is read as
a plain tar only (a gzip or xz stream under a ``.tar`` name is refused, never
decompressed), a download larger than ``DatasetSource.max_bytes`` is refused
from its announced size (and stopped if it runs past it), and the archive's
size before downloading, and its members' total before extracting, must fit in
the free disk with ``DISK_MARGIN_BYTES`` to spare. Redirects, also to another
host, are followed (mirrors use them): these checks, not the URL, are the gate.
One process at a time gets a dataset ready (a lock file beside it); the next
one removes the staging a killed run left behind.
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
from ..files import exclusive, open_no_follow, remove_leftovers

DEFAULT_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/static"
BASE_URL_ENV = "FACE_AGING_DATA_URL"
CHUNK_BYTES = 1 << 20
MAX_ATTEMPTS = 5
GIB = 1 << 30
DISK_MARGIN_BYTES = GIB // 4  # left free after a download or an extraction, so the machine stays usable
# Archive member names: the datasets' are 3 levels deep and under 100 characters.
MAX_MEMBER_DEPTH = 8
MAX_MEMBER_NAME_CHARS = 1024
MAX_NAME_PART_BYTES = 255  # a file name longer than this cannot be created (NAME_MAX)
# Leading bytes of compressed streams that tarfile would otherwise decompress without a bound.
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd",
                    b"\x5d\x00\x00": "lzma"}
STAGING_PREFIX = ".extracting-"


@dataclass(frozen=True)
class DatasetSource:
    """Where an archive comes from, what it unpacks to and how large it may be."""

    archive: str      # file name on the server / on disk
    folder: str       # top folder inside the archive
    approx_size: str  # for the offline message
    max_bytes: int    # the archive, and the total of its members, may be at most this (with headroom)
    size: int | None = None  # exact bytes when known; else the server must say (Content-Length)


class CorruptArchive(RuntimeError):
    """The archive is damaged or not the expected one (not a tar, cut short, no expected folder)."""


class SizeUnknown(RuntimeError):
    """The server did not say how large the file is, so completeness cannot be checked."""


class UnsafeArchive(RuntimeError):
    """The archive holds members that could write outside the target (links, .., devices)."""


class NotEnoughDisk(RuntimeError):
    """The file, or what an archive unpacks to, does not fit in the free disk (with a margin)."""


# The one table of the datasets: the published archives are 0.8 GB (wiki) and 7 GB (imdb).
SOURCES = {
    "wiki": DatasetSource("wiki_crop.tar", "wiki_crop", "about 1 GB", max_bytes=2 * GIB),
    "imdb": DatasetSource("imdb_crop.tar", "imdb_crop", "about 7 GB", max_bytes=10 * GIB),
    "mini-wiki": DatasetSource("mini_wiki_crop.tar", "wiki_crop", "about 100 MB, generated", max_bytes=1 * GIB),
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
    if target.exists() and not (name == "mini-wiki" and _stale_mini_wiki(target)):
        return target  # nothing to write: this also serves a read-only course home
    home = target.parent
    home.mkdir(parents=True, exist_ok=True)
    with exclusive(home / f"{name}.lock", f"getting the {name} dataset ready"):
        return _get_ready(name, source, target, progress, base_url, sha256, expected_size, mini_wiki_entries)


def _get_ready(name, source, target, progress, base_url, sha256, expected_size, mini_wiki_entries) -> Path:
    """``download_dataset``'s work, done while holding the dataset's lock."""
    home = target.parent
    archive = home / source.archive
    if name == "mini-wiki":
        _remove_stale_mini_wiki(target, archive)
    if target.exists():  # another process got it ready while this one waited
        return target
    for leftover in remove_leftovers(home, [f"{STAGING_PREFIX}*", f".{source.archive}.*.tmp"]):
        print(f"removed {leftover}, left by an interrupted run")
    for round_ in range(2):  # a corrupt archive is moved aside and fetched once more
        if not archive.exists():
            _obtain(name, source, archive, progress, base_url, sha256, expected_size, mini_wiki_entries)
        try:
            safe_extract(archive, home, expected_folder=source.folder, max_bytes=source.max_bytes)
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


def _stale_mini_wiki(target: Path) -> str | None:
    from .mini_wiki import stale_reason

    return stale_reason(target)


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
              expected_size=expected_size if expected_size is not None else source.size, max_size=source.max_bytes)
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
          expected_size: int | None = None, attempts: int = MAX_ATTEMPTS, max_size: int | None = None) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.part``, resuming cut-off transfers.

    The file is accepted only when its full size is known (``expected_size``,
    Content-Length or Content-Range) and matched. Network failures, including
    a transfer that keeps stopping early, raise ``URLError`` and keep the
    .part for a later resume; a .part that is already complete is finished
    without asking the server again. A wrong size or SHA-256 raises
    RuntimeError and deletes the .part (its bytes are wrong, not missing), as
    does a size above ``max_size``, refused before anything is written. A file
    that would leave less than ``DISK_MARGIN_BYTES`` free raises
    ``NotEnoughDisk`` (the .part is kept). The .part is never written through a
    link.
    """
    destination = Path(destination)
    part = destination.with_name(destination.name + ".part")
    if part.is_symlink():
        raise RuntimeError(f"{part} is a symbolic link (to {os.readlink(part)}); refusing to write through it. "
                           "Delete it and run this again")
    total = expected_size
    bar = tqdm(desc=f"Downloading {destination.name}", unit="B", unit_scale=True, disable=not progress)
    try:
        if total is not None:  # known before asking the server
            _check_room(url, part, total, part.stat().st_size if part.exists() else 0, max_size)
        for attempt in range(attempts):
            offset = part.stat().st_size if part.exists() else 0
            if total is not None and offset >= total:
                break  # complete (or too long: _verify says so)
            try:
                total = _receive(url, part, offset, total, expected_size, max_size, bar, destination)
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
    except (SizeUnknown, NotEnoughDisk):
        raise  # the .part's bytes are not known to be wrong: keep them
    except RuntimeError:
        part.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    os.replace(part, destination)
    return destination


def _receive(url: str, part: Path, offset: int, total: int | None, expected_size: int | None,
             max_size: int | None, bar, destination: Path) -> int:
    """One request from ``offset`` on, appended to the .part; returns the file's full size."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
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
        _check_room(url, part, total, offset, max_size)
        bar.reset(total=total)
        bar.update(offset)
        with open_no_follow(part, append=bool(offset)) as out:
            written = offset
            while chunk := response.read(CHUNK_BYTES):
                written += len(chunk)
                if written > total:
                    raise RuntimeError(f"{url} sent more than the {total:,} bytes it announced; refusing it")
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    return total


def _check_room(url: str, part: Path, total: int, offset: int, max_size: int | None) -> None:
    """Refuse a file larger than ``max_size``, or one whose remaining bytes the disk cannot hold."""
    if max_size is not None and total > max_size:
        raise RuntimeError(f"{url} is {_gb(total)}, more than the {_gb(max_size)} this file can be; refusing it "
                           "(nothing was written)")
    free = shutil.disk_usage(part.parent).free
    if total - offset > free - DISK_MARGIN_BYTES:
        raise NotEnoughDisk(f"downloading {url} needs {_gb(total - offset)} more, but {part.parent} has only "
                            f"{_gb(free)} free (and {_gb(DISK_MARGIN_BYTES)} must stay free); make room and run "
                            "this again")


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


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


def _shown(name: str) -> str:
    """A member name fit for a message (a 10,000-character name is cut short)."""
    return repr(name) if len(name) <= 120 else f"{name[:100]!r}... ({len(name):,} characters)"


def _check_member(member: tarfile.TarInfo, expected_folder: str | None) -> None:
    """Refuse members that could write outside the target folder (every link, '..', absolute, special:
    ``UnsafeArchive``) and names no dataset has (too long, too deep: ``CorruptArchive``)."""
    name, shown = member.name, _shown(member.name)
    pure = PurePosixPath(name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or pure.is_absolute():
        raise UnsafeArchive(f"archive member {shown} has an absolute path; refusing the archive")
    if ".." in pure.parts or "\\" in name:
        raise UnsafeArchive(f"archive member {shown} leaves the target folder; refusing the archive")
    if member.issym() or member.islnk():
        # Link chains defeat any text check of the target (CVE-2025-4517); real archives hold none.
        raise UnsafeArchive(f"archive member {shown} links to {_shown(member.linkname)}; links can lead "
                            "outside the target (links outside are how tar attacks work), so every "
                            "link is refused; refusing the archive")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"archive member {shown} is a device or special file; refusing the archive")
    longest_part = max((len(part.encode("utf-8", "surrogateescape")) for part in pure.parts), default=0)
    if len(name) > MAX_MEMBER_NAME_CHARS or len(pure.parts) > MAX_MEMBER_DEPTH or longest_part > MAX_NAME_PART_BYTES:
        raise CorruptArchive(f"archive member {shown} is {len(pure.parts)} folders deep with a name of "
                             f"{len(name):,} characters; a dataset's are at most {MAX_MEMBER_DEPTH} deep and "
                             f"{MAX_MEMBER_NAME_CHARS} characters long; this is not the expected archive")
    if expected_folder and pure.parts and pure.parts[0] != expected_folder:
        raise CorruptArchive(f"archive member {shown} is outside {expected_folder}/; "
                             "this is not the expected archive")


def _check_layout(members: list, expected_folder: str | None) -> None:
    """Refuse a file member where a folder must be (``wiki_crop`` itself, or a parent of other members)."""
    files = {PurePosixPath(m.name) for m in members if not m.isdir()}
    if expected_folder and PurePosixPath(expected_folder) in files:
        raise CorruptArchive(f"archive member {expected_folder!r} is a file, not the {expected_folder}/ folder; "
                             "this is not the expected archive")
    for member in members:
        for parent in PurePosixPath(member.name).parents:
            if parent in files:
                raise CorruptArchive(f"archive member {_shown(str(parent))} is a file, but "
                                     f"{_shown(member.name)} needs it to be a folder; this is not the expected archive")


def _refuse_compressed(archive: Path) -> None:
    """A .tar is read as a plain tar: a compressed stream could unpack to far more than the disk holds."""
    with open(archive, "rb") as handle:
        head = handle.read(8)
    for magic, kind in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise CorruptArchive(f"{archive} is a {kind}-compressed stream, not a plain tar; refusing to "
                                 "decompress it (a small compressed file can unpack to fill the disk). The dataset "
                                 "is published as a plain .tar")


def safe_extract(archive, destination, expected_folder: str | None = None, max_bytes: int | None = None) -> Path:
    """Extract a plain tar into ``destination`` after checking every member; all or nothing.

    Only regular files and folders are accepted (``UnsafeArchive`` otherwise);
    a file that is not a plain tar (compressed streams included), holds no
    ``expected_folder``, has member names no dataset has, or members totalling
    more than ``max_bytes`` raises ``CorruptArchive``. Members that would not
    fit in the free disk (keeping ``DISK_MARGIN_BYTES``) raise
    ``NotEnoughDisk`` before anything is written. Members are extracted into a
    temporary folder next to ``destination`` and moved into place at the end,
    so a refused or failed extraction leaves nothing behind.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    _refuse_compressed(archive)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=destination))
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = tar.getmembers()
            try:
                for member in members:
                    _check_member(member, expected_folder)
                _check_layout(members, expected_folder)
            except (UnsafeArchive, CorruptArchive) as error:
                raise type(error)(f"{archive}: {error}") from None
            tops = sorted({PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts})
            if not tops or (expected_folder and expected_folder not in tops):
                raise CorruptArchive(f"{archive} holds no {expected_folder or 'files'}/")
            _check_unpacked_size(archive, members, destination, max_bytes)
            try:
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: a second line of defence
                    tar.extractall(staging, members=members, filter="data")
                else:  # only plain files and folders with safe names are left to extract
                    tar.extractall(staging, members=members)
            except RecursionError as error:  # folders nested deeper than Python recurses
                raise CorruptArchive(f"{archive} nests folders too deeply to extract ({error})") from None
        for top in tops:
            if (destination / top).exists():
                raise RuntimeError(f"{destination / top} already exists; remove it to extract again")
            os.replace(staging / top, destination / top)
    except (tarfile.TarError, EOFError) as error:
        raise CorruptArchive(f"{archive} is not a valid tar archive ({error})") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _check_unpacked_size(archive: Path, members: list, destination: Path, max_bytes: int | None) -> None:
    """The members' total must be within ``max_bytes`` and fit in the free disk, before one byte is written."""
    total = sum(member.size for member in members if member.isfile())
    if max_bytes is not None and total > max_bytes:
        raise CorruptArchive(f"{archive} unpacks to {_gb(total)}, more than the {_gb(max_bytes)} this dataset can "
                             "be; this is not the expected archive")
    needed = sum(-(-member.size // 4096) * 4096 if member.isfile() else 4096 for member in members)  # whole blocks
    free = shutil.disk_usage(destination).free
    if needed > free - DISK_MARGIN_BYTES:
        raise NotEnoughDisk(f"extracting {archive} needs {_gb(needed)}, but {destination} has only {_gb(free)} free "
                            f"(and {_gb(DISK_MARGIN_BYTES)} must stay free); make room and run this again")
