"""The course's example photographs: the files in the repository's ``assets/photos``.

An installed copy without the repository (Colab) downloads one once into the course home and
keeps it only if its SHA-256 is the one recorded here.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from . import paths
from .colab import raw_file_url
from .data.download import fetch
from .data.images import MAX_PHOTO_BYTES

# The public-domain / CC0 photographs in the repository's assets/photos (see its LICENSE.md) -> SHA-256.
EXAMPLE_PHOTOS = {
    "astronaut.jpg": "5d23a5c528c48071426b9c0998291aaa59105f9e53ab9379f960e045f1ac52ac",
    "camera.jpg": "f94d3bfa13bb2e1eba41fb8d60b61e29d4443bb6fcc2275e37bb389286bf63cc",
    "chelsea.jpg": "4d0169c5aee1e7aa69698d7465766522f455c85a521f484bb29876453e8b3b1a",
    "coffee.jpg": "52daa39473f2bb8817f03f5ccafa7bb874cf2b200ef74dc1cdf513fd1c06d594",
}


def example_photo(name: str, base_url: str | None = None) -> Path:
    """The path of one of the course's example photographs (``EXAMPLE_PHOTOS``).

    In a checkout of the repository it is the file in ``assets/photos``. An installed copy without
    the repository (Colab) downloads it once into the course home from the repository on GitHub
    (or ``base_url``), and keeps it only if its SHA-256 is the one above.
    """
    if name not in EXAMPLE_PHOTOS:
        raise ValueError(f"{name!r} is not an example photo; there are {', '.join(sorted(EXAMPLE_PHOTOS))}")
    root = paths.repo_root()
    if root is not None and (root / "assets" / "photos" / name).is_file():
        return root / "assets" / "photos" / name
    destination = paths.course_home() / "assets" / "photos" / name
    if destination.is_file() and _sha256(destination) == EXAMPLE_PHOTOS[name]:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}" if base_url else raw_file_url(f"assets/photos/{name}")
    return fetch(url, destination, progress=False, sha256=EXAMPLE_PHOTOS[name], max_size=MAX_PHOTO_BYTES)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
