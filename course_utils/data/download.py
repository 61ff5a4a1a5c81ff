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

    Does nothing when the folder exists. ``root`` defaults to
    ``paths.datasets_dir()``. For wiki/imdb the archive is fetched from
    ``base_url`` (default: ``$FACE_AGING_DATA_URL`` or the ETH server);
    ``sha256``/``expected_size`` make the check stricter.
    """
    source = _source(name)
    target = dataset_folder(name, root)
    if target.exists():
        return target
    home = target.parent
    home.mkdir(parents=True, exist_ok=True)
    archive = home / source.archive
    if name == "mini-wiki":
        if not archive.exists():
            from .mini_wiki import build_mini_wiki

            build_mini_wiki(home, n_entries=mini_wiki_entries, progress=progress)
    elif not archive.exists():
        base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base}/{source.archive}"
        try:
            fetch(url, archive, progress=progress, sha256=sha256, expected_size=expected_size)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise RuntimeError(
                f"Could not download {url} ({error}).\n"
                f"Download it by hand ({source.approx_size}) and put it at {archive}, "
                f"then run this again; or set FACE_AGING_DATASET=mini-wiki to use the "
                f"embedded dataset, which works offline."
            ) from error
    try:
        safe_extract(archive, home, expected_folder=source.folder)
    except RuntimeError:
        if target.exists():  # another process (a second notebook) extracted it meanwhile
            return target
        raise
    return target


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


def fetch(url: str, destination, progress: bool = True, sha256: str | None = None,
          expected_size: int | None = None, attempts: int = MAX_ATTEMPTS) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.part``, resuming cut-off transfers.

    Raises RuntimeError (and deletes the partial file) when the size or the
    SHA-256 does not match. Network errors (URLError) propagate after the
    attempts are used up, keeping the .part file for a later resume.
    """
    destination = Path(destination)
    part = destination.with_name(destination.name + ".part")
    total = expected_size
    bar = tqdm(desc=f"Downloading {destination.name}", unit="B", unit_scale=True, disable=not progress)
    try:
        for attempt in range(attempts):
            offset = part.stat().st_size if part.exists() else 0
            if total is not None and offset >= total:
                break
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
                    bar.reset(total=total)
                    bar.update(offset)
                    with open(part, "ab" if offset else "wb") as out:
                        while chunk := response.read(CHUNK_BYTES):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
                if attempt == attempts - 1:
                    raise urllib.error.URLError(f"transfer kept failing: {error}") from error
                continue
            except urllib.error.HTTPError as error:
                if error.code == 416 and total is not None and offset == total:
                    break  # already complete
                raise
            if total is None or part.stat().st_size >= total:
                break
        _verify(part, url, total, sha256)
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
    """Refuse members that could write outside the target folder."""
    name = member.name
    pure = PurePosixPath(name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or pure.is_absolute():
        raise RuntimeError(f"archive member {name!r} has an absolute path; refusing the archive")
    if ".." in pure.parts or "\\" in name:
        raise RuntimeError(f"archive member {name!r} leaves the target folder; refusing the archive")
    if expected_folder and pure.parts and pure.parts[0] != expected_folder:
        raise RuntimeError(f"archive member {name!r} is outside {expected_folder}/; refusing the archive")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        resolved = link if member.islnk() else pure.parent / link
        if link.is_absolute() or ".." in PurePosixPath(os.path.normpath(str(resolved))).parts \
                or os.path.normpath(str(resolved)).startswith(".."):
            raise RuntimeError(f"archive member {name!r} links outside the target "
                               f"({member.linkname!r}); refusing the archive")
    elif not (member.isfile() or member.isdir()):
        raise RuntimeError(f"archive member {name!r} is a device or special file; refusing the archive")


def safe_extract(archive, destination, expected_folder: str | None = None) -> Path:
    """Extract a tar into ``destination`` after checking every member; all or nothing.

    Members are extracted into a temporary folder next to ``destination`` and
    moved into place at the end, so a refused or failed extraction leaves
    nothing behind.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=destination))
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, expected_folder)
            tar.extractall(staging, members=members, filter="data")
        for top in sorted({PurePosixPath(m.name).parts[0] for m in members if m.name}):
            if (destination / top).exists():
                raise RuntimeError(f"{destination / top} already exists; remove it to extract again")
            os.replace(staging / top, destination / top)
    except tarfile.TarError as error:
        raise RuntimeError(f"{archive} is not a valid tar archive ({error})") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
