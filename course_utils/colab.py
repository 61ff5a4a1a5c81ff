"""The "Open in Colab" badge and bootstrap cell that open every chapter notebook.

The repository slug is set here and only here. After changing it run
``python -m course_utils.colab`` to rewrite the first cells of every notebook;
``tests/test_colab.py`` fails when a notebook's badge or bootstrap drifts.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO_SLUG = "face-aging-course/face-aging-cgan"
BRANCH = "main"
BADGE_MARKER = "colab-badge"
BOOTSTRAP_MARKER = "# Colab bootstrap"


def colab_url(notebook_name: str) -> str:
    return (f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}"
            f"/notebooks/{notebook_name}")


def raw_file_url(path_in_repository: str) -> str:
    """A file of the repository as GitHub serves it, for an installed copy without a checkout (Colab)."""
    return f"https://raw.githubusercontent.com/{REPO_SLUG}/{BRANCH}/{path_in_repository}"


def badge_markdown(notebook_name: str) -> str:
    return (f'<a href="{colab_url(notebook_name)}" target="_parent" id="{BADGE_MARKER}">'
            '<img src="https://colab.research.google.com/assets/colab-badge.svg" '
            'alt="Open In Colab"/></a>')


COLAB_PREINSTALLED = ("torch", "torchvision", "numpy")


def colab_requirements() -> list[str]:
    """pyproject.toml's dependencies, bounds included, less those Colab brings (never reinstalled)."""
    import re
    import tomllib

    from course_utils.paths import repo_root

    root = repo_root()
    if root is None:
        raise RuntimeError("the bootstrap cell is written from a checkout of the course repository")
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in dependencies if re.match(r"[A-Za-z0-9_.-]+", d).group() not in COLAB_PREINSTALLED]


def bootstrap_source() -> str:
    # --no-deps for the course package, then pyproject's other dependencies with their bounds,
    # so pip keeps Colab's own torch, torchvision and numpy.
    requirements = " ".join(f'"{requirement}"' for requirement in colab_requirements())
    return f"""{BOOTSTRAP_MARKER}: on Colab, install the course package; elsewhere do nothing.
import sys
if "google.colab" in sys.modules:
    %pip install -q --no-deps "course_utils @ git+https://github.com/{REPO_SLUG}.git@{BRANCH}"
    %pip install -q {requirements}"""


def apply_to_notebook(path: Path) -> bool:
    """Make the first cells the badge and the bootstrap; True when the file changed."""
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    first = notebook.cells[0]
    lines = first.source.split("\n")
    body = [line for line in lines if BADGE_MARKER not in line]
    first.source = "\n".join([badge_markdown(path.name)] + body)
    second = notebook.cells[1]
    if second.cell_type == "code" and second.source.startswith(BOOTSTRAP_MARKER):
        second.source = bootstrap_source()
    else:
        notebook.cells.insert(1, nbformat.v4.new_code_cell(bootstrap_source()))
    notebook.metadata["accelerator"] = "GPU"  # Colab's hint to pick a GPU runtime
    notebook.metadata.setdefault("colab", {})["provenance"] = []
    after = nbformat.writes(notebook)
    if after != before:
        nbformat.write(notebook, path)
    return after != before


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "notebooks"
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        print(f"{path.name}: {'updated' if apply_to_notebook(path) else 'up to date'}")


if __name__ == "__main__":
    main()
