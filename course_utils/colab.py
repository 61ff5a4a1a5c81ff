"""The "Open in Colab" badge, the bootstrap cell and the figures of every chapter notebook.

The repository slug and the ref that Colab opens and installs are set here and only here. The ref
is the release tag of this version of the course (``v`` + pyproject's version), never a branch: a
notebook saved to Drive keeps installing the package it was written for. After changing either, or
a figure in ``assets/``, run ``python -m course_utils.colab`` to rewrite every notebook;
``tests/test_colab.py`` fails when a notebook's badge, bootstrap or figures drift.

Figures are embedded in the markdown as data URIs (the file named in the image's title), so they
show offline, on Colab, in a Drive copy, on GitHub and on the site alike. Cell attachments were the
other candidate; Colab, GitHub and myst-nb (the site) do not render them.
"""
from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

REPO_SLUG = "face-aging-course/face-aging-cgan"
REF = "v0.1.0"
BADGE_MARKER = "colab-badge"
BOOTSTRAP_MARKER = "# Colab bootstrap"
LOCK_FILE = "requirements.lock"
# Colab's own copies are kept: never reinstalled, so the bootstrap does not name them.
COLAB_PREINSTALLED = ("torch", "torchvision", "numpy")
# Installed by the bounds in pyproject.toml rather than the lock's pin: Colab's own ipywidgets 7
# satisfies them (course_utils.widgets handles both 7 and 8), and replacing it breaks Colab's widgets.
COLAB_KEEPS_IF_WITHIN_BOUNDS = ("ipywidgets",)
# ![alt](source "title"): a markdown image; an embedded figure names its file in the title.
MARKDOWN_IMAGE = re.compile(r'!\[(?P<alt>[^\]]*)\]\((?P<source>[^)\s]+)(?:\s+"(?P<title>[^"]*)")?\)')
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def repository_url() -> str:
    return f"https://github.com/{REPO_SLUG}"


def colab_url(notebook_name: str) -> str:
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{REF}/notebooks/{notebook_name}"


def raw_file_url(path_in_repository: str) -> str:
    """A file of the repository as GitHub serves it, for an installed copy without a checkout (Colab)."""
    return f"https://raw.githubusercontent.com/{REPO_SLUG}/{REF}/{path_in_repository}"


def _badge_markdown(notebook_name: str) -> str:
    return (f'<a href="{colab_url(notebook_name)}" target="_parent" id="{BADGE_MARKER}">'
            '<img src="https://colab.research.google.com/assets/colab-badge.svg" '
            'alt="Open In Colab"/></a>')


def requirement_name(requirement: str) -> str:
    """The normalised project name a requirement string starts with ("Jupyter_Book>=1" -> "jupyter-book")."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9_.-]+)", requirement).group(1)).lower()


def locked_versions(lock_text: str) -> dict[str, str]:
    """Name -> pinned version of every ``name==version`` line of a lock file written by uv or pip-compile."""
    pins = {}
    for line in lock_text.splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[requirement_name(match.group(1))] = match.group(2)
    return pins


def _checkout() -> Path:
    from course_utils.paths import repo_root

    root = repo_root()
    if root is None:
        raise RuntimeError("the notebooks are written from a checkout of the course repository")
    return root


def _colab_requirements() -> list[str]:
    """What the bootstrap installs besides the package: pyproject's dependencies at the lock's versions,
    less those Colab brings (never reinstalled) and those Colab keeps when its version is within bounds."""
    import tomllib

    root = _checkout()
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = locked_versions((root / LOCK_FILE).read_text())
    requirements = []
    for dependency in dependencies:
        name = requirement_name(dependency)
        if name in COLAB_PREINSTALLED:
            continue
        requirements.append(dependency if name in COLAB_KEEPS_IF_WITHIN_BOUNDS else f"{name}=={pins[name]}")
    return requirements


def bootstrap_source() -> str:
    # --no-deps for the course package, then its other dependencies one by one, so pip keeps
    # Colab's own torch, torchvision and numpy.
    requirements = " ".join(f'"{requirement}"' for requirement in _colab_requirements())
    return f"""{BOOTSTRAP_MARKER}: on Colab, install the course package; elsewhere do nothing.
import sys
if "google.colab" in sys.modules:
    %pip install -q --no-deps "course_utils @ git+https://github.com/{REPO_SLUG}.git@{REF}"
    %pip install -q {requirements}"""


def _figure_data_uri(path: Path) -> str:
    return f"data:{IMAGE_TYPES[path.suffix.lower()]};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure_file(source: str, title: str | None) -> str | None:
    """The repository file a markdown image shows: its relative path from notebooks/, or an embedded
    figure's title; None for anything else (a URL)."""
    if source.startswith("../"):
        return source[3:]
    if source.startswith("data:") and title:
        return title
    return None


def _embed_figures(markdown: str, root: Path) -> str:
    """Every image of ``markdown`` that shows a repository file, embedded from that file as it is now."""
    def embedded(match: re.Match) -> str:
        name = figure_file(match["source"], match["title"])
        if name is None:
            return match.group(0)
        return f'![{match["alt"]}]({_figure_data_uri(root / name)} "{name}")'

    return MARKDOWN_IMAGE.sub(embedded, markdown)


def apply_to_notebook(path: Path) -> bool:
    """Make the first cells the badge and the bootstrap, embed the figures; True when the file changed."""
    import nbformat  # here: an installed copy (Colab) imports this module for raw_file_url, without nbformat

    root = _checkout()
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    first = notebook.cells[0]
    lines = first.source.split("\n")
    body = [line for line in lines if BADGE_MARKER not in line]
    first.source = "\n".join([_badge_markdown(path.name)] + body)
    second = notebook.cells[1] if len(notebook.cells) > 1 else None
    if second is not None and second.cell_type == "code" and second.source.startswith(BOOTSTRAP_MARKER):
        second.source = bootstrap_source()
    else:
        notebook.cells.insert(1, nbformat.v4.new_code_cell(bootstrap_source()))
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _embed_figures(cell.source, root)
    notebook.metadata["accelerator"] = "GPU"  # Colab's hint to pick a GPU runtime
    notebook.metadata.setdefault("colab", {})["provenance"] = []
    after = nbformat.writes(notebook)
    if after != before:
        nbformat.write(notebook, path)
    return after != before


def notebooks_with_badges(folder: Path) -> list[Path]:
    """The six chapters, the appendix and the solutions: each opens on Colab from its badge."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) + [folder / "appendix_under_the_hood.ipynb",
                                                        folder / "solutions.ipynb"]


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "notebooks"
    for path in notebooks_with_badges(folder):
        print(f"{path.name}: {'updated' if apply_to_notebook(path) else 'up to date'}")


if __name__ == "__main__":
    main()
