"""Each chapter's key figures, written by the notebooks and tabled by ``make course``."""
from __future__ import annotations

import json

from . import paths
from .files import write_atomically


def record_summary(chapter: str, **figures) -> None:
    """Store a chapter's key figures (numbers or short strings) as JSON for ``make course``."""
    folder = paths.summary_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / f"{chapter}.json", json.dumps(figures, indent=1, default=float))


def read_summary(chapter: str) -> dict:
    path = paths.summary_dir() / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def format_figures(figures: dict) -> str:
    """One readable line: ``name=value`` pairs, floats to 3 significant digits."""
    parts = []
    for name, value in figures.items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{name}={value}")
    return ", ".join(parts)
