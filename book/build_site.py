"""Build the course site (Jupyter Book 1: Sphinx + myst-nb) into _build/html, offline, without executing.

The site's pages are the repository's own files, read where they lie: README.md is the front page,
then the chapters (notebooks/NN_*.ipynb), any other notebook in notebooks/ (an appendix) and any
docs/*.md, in that order. The notebooks are rendered with the outputs they were committed with.

Jupyter Book's _config.yml and _toc.yml are written by this script into _build/book/, from the
settings in ``course_utils.colab`` (the repository and the ref the Colab buttons open), so no
second copy of them exists. Every Sphinx warning fails the build, and so does a page whose local
link or image points at a file the site does not have (``book/check_site.py``).

    python book/build_site.py       # what `make site` runs, in the site venv
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# course_utils (its __init__ imports nothing, and colab.py no torch: the site's venv has none) and book/.
sys.path[:0] = [str(ROOT), str(ROOT / "book")]
from check_site import site_problems  # noqa: E402
from course_utils import colab  # noqa: E402

BUILD = ROOT / "_build"
CONFIG_DIR = BUILD / "book"
# Folders Sphinx must not walk: they hold no page, and .venv alone has tens of thousands of files.
EXCLUDED = ["_build", ".git", ".venv*", ".course_data", "test-artifacts", "runs", "data", "benchmarks",
            "course_utils", "scripts", "tests", "assets/photos", "book", "**.ipynb_checkpoints",
            "**/node_modules", ".github", ".ci"]


def pages(root: Path = ROOT) -> list[str]:
    """The site's pages after the front page, as paths without suffix, in reading order."""
    chapters = sorted(root.glob("notebooks/[0-9][0-9]_*.ipynb"))
    other_notebooks = sorted(set(root.glob("notebooks/*.ipynb")) - set(chapters))
    docs = sorted(root.glob("docs/*.md"))
    return [path.relative_to(root).with_suffix("").as_posix() for path in chapters + other_notebooks + docs]


def table_of_contents(root: Path = ROOT) -> dict:
    return {"format": "jb-book", "root": "README", "chapters": [{"file": page} for page in pages(root)]}


def book_config() -> dict:
    licence_footer = (
        '<p>Code: <a href="{repo}/blob/{ref}/LICENSE">MIT licence</a>. Text and figures: '
        '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a> '
        '(<a href="{repo}/blob/{ref}/LICENSE-CONTENT.md">what that covers</a>). '
        'The example photographs keep their own terms '
        '(<a href="{repo}/blob/{ref}/assets/photos/LICENSE.md">assets/photos</a>).</p>'
    ).format(repo=colab.repository_url(), ref=colab.REF)
    return {
        "title": "Face Aging with an Encoder + Conditional DCGAN",
        "author": "the Face Aging course authors",
        "copyright": "the Face Aging course authors",
        "only_build_toc_files": True,
        "exclude_patterns": EXCLUDED,
        # Rendered from the committed outputs: the chapters take minutes each and train GANs.
        "execute": {"execute_notebooks": "off"},
        "repository": {"url": colab.repository_url(), "branch": colab.REF, "path_to_book": ""},
        "launch_buttons": {"colab_url": "https://colab.research.google.com", "notebook_interface": "jupyterlab"},
        "html": {
            "use_repository_button": True,
            "extra_footer": licence_footer,
        },
        "sphinx": {
            "extra_extensions": ["site_extension"],  # book/site_extension.py
            "config": {
                "html_show_copyright": False,
                # A page may not load scripts from the internet: the site is built, read and tested offline.
                "nb_ipywidgets_js": {},
                "suppress_warnings": [],
            },
        },
    }


def build_command() -> list[str]:
    """jupyter-book (beside this Python) building everything again, any warning an error."""
    return [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
            "--config", str(CONFIG_DIR / "_config.yml"), "--toc", str(CONFIG_DIR / "_toc.yml"),
            "--path-output", str(ROOT), "--warningiserror", "--nitpick", "--keep-going", "--all"]


def main() -> int:
    shutil.rmtree(CONFIG_DIR, ignore_errors=True)
    CONFIG_DIR.mkdir(parents=True)
    (CONFIG_DIR / "_config.yml").write_text(yaml.safe_dump(book_config(), sort_keys=False))
    (CONFIG_DIR / "_toc.yml").write_text(yaml.safe_dump(table_of_contents(), sort_keys=False))
    started = time.monotonic()
    command = build_command()
    # Sphinx imports book/site_extension.py, which imports course_utils.colab.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), str(ROOT / "book"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=ROOT, env=environment)
    if result.returncode != 0:
        print("site build failed: see the warnings above", file=sys.stderr)
        return result.returncode
    problems = site_problems(BUILD / "html")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"site build failed: {len(problems)} broken local links or images", file=sys.stderr)
        return 1
    print(f"site built and checked in {time.monotonic() - started:.0f} s: {BUILD / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
