"""The course site's build (book/build_site.py) and its link checker (book/check_site.py), without
building: `make site` builds it, and `make browser` opens chapter 5's page in Chromium."""
import sys
from pathlib import Path

import pytest

from course_utils import colab

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
import build_site  # noqa: E402
from check_site import site_problems  # noqa: E402


def test_pages_are_the_chapters_then_other_notebooks_then_docs(tmp_path):
    for name in ("notebooks/02_b.ipynb", "notebooks/01_a.ipynb", "notebooks/appendix_under_the_hood.ipynb",
                 "docs/testing.md", "docs/benchmarks.md", "notebooks/scratch.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert build_site.pages(tmp_path) == ["notebooks/01_a", "notebooks/02_b", "notebooks/appendix_under_the_hood",
                                          "docs/benchmarks", "docs/testing"]
    toc = build_site.table_of_contents(tmp_path)
    assert toc["root"] == "README" and toc["chapters"][0] == {"file": "notebooks/01_a"}


def test_the_site_has_the_readme_and_six_chapters():
    chapters = [page for page in build_site.pages() if page.startswith("notebooks/")]
    assert chapters[:6] == [f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert len(chapters) >= 6 and (ROOT / "README.md").is_file()


def test_colab_buttons_open_the_notebook_at_the_ref_and_the_footer_names_the_licences():
    config = build_site.book_config()
    assert config["repository"] == {"url": f"https://github.com/{colab.REPO_SLUG}", "branch": colab.REF, "path_to_book": ""}
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    # the theme's link: {colab_url}/github/{org}/{repo}/blob/{branch}/{page}.ipynb, which is colab_url()
    org, repo = colab.REPO_SLUG.split("/")
    theme_link = f"https://colab.research.google.com/github/{org}/{repo}/blob/{colab.REF}/notebooks/05_aging.ipynb"
    assert theme_link == colab.colab_url("05_aging.ipynb")
    footer = config["html"]["extra_footer"]
    for text in ("MIT", "CC BY 4.0", f"/blob/{colab.REF}/LICENSE", "LICENSE-CONTENT.md", "assets/photos/LICENSE.md"):
        assert text in footer, text
    for file in ("LICENSE", "LICENSE-CONTENT.md", "assets/photos/LICENSE.md"):
        assert (ROOT / file).is_file(), file


def test_nothing_is_executed_and_no_page_loads_scripts_from_the_internet():
    config = build_site.book_config()
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["sphinx"]["config"]["nb_ipywidgets_js"] == {}
    assert {".venv*", ".course_data", "_build"} <= set(config["exclude_patterns"])


def test_the_build_treats_warnings_as_errors():
    assert {"--warningiserror", "--nitpick", "--keep-going"} <= set(build_site.build_command())


@pytest.fixture
def site(tmp_path):
    """A tiny built site: a front page, a chapter with a figure and an anchor, and an image file."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "figure.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<a href="notebooks/chapter.html#section">chapter</a><a href="#top" id="top">top</a>'
        '<a href="https://example.org/">away</a><img src="data:image/png;base64,AAAA">')
    (tmp_path / "notebooks" / "chapter.html").write_text(
        '<section id="section"><img src="../_images/figure.png"><a href="../index.html">home</a></section>')
    return tmp_path


def test_a_whole_site_passes(site):
    assert site_problems(site) == []


def test_missing_files_anchors_and_offsite_images_are_each_reported(site):
    page = site / "notebooks" / "chapter.html"
    page.write_text(page.read_text() + '<img src="../_images/gone.png"><a href="../missing.html">x</a>'
                    '<a href="../index.html#nowhere">y</a><img src="https://colab.research.google.com/badge.svg">'
                    '<a href="../../outside.html">z</a>')
    problems = site_problems(site)
    assert problems == [
        "notebooks/chapter.html: img points at a missing file: ../_images/gone.png",
        "notebooks/chapter.html: a points at a missing file: ../missing.html",
        "notebooks/chapter.html: no anchor #nowhere in index.html",
        "notebooks/chapter.html: image from another server https://colab.research.google.com/badge.svg",
        "notebooks/chapter.html: a points outside the site: ../../outside.html",
    ]

