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


def bootstrap_source() -> str:
    # torch, torchvision and numpy come with Colab: --no-deps for the course package and an
    # explicit list of the rest keeps pip from reinstalling them.
    return f"""{BOOTSTRAP_MARKER}: on Colab, install the course package; elsewhere do nothing.
import sys
if "google.colab" in sys.modules:
    %pip install -q --no-deps "course_utils @ git+https://github.com/{REPO_SLUG}.git@{BRANCH}"
    %pip install -q scipy pandas matplotlib tqdm ipywidgets pillow"""


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
