"""Every chapter opens with its own Colab badge and a bootstrap cell that is harmless elsewhere; both, and every
other link to the repository, name one slug and one ref (a release tag, never a branch). Figures are
embedded, so they show offline, on Colab and in a Drive copy."""
import base64
import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from course_utils import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WITH_BADGES = colab.notebooks_with_badges(ROOT / "notebooks")


def test_there_are_six_chapters_and_two_more_notebooks_with_badges():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    assert WITH_BADGES[6:] == [ROOT / "notebooks" / "appendix_under_the_hood.ipynb", ROOT / "notebooks" / "solutions.ipynb"]
    assert all(path.is_file() for path in WITH_BADGES)


@pytest.mark.parametrize("path", WITH_BADGES, ids=lambda p: p.name)
def test_badge_points_at_its_own_notebook(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    links = re.findall(r'href="([^"]+)"', first.source)
    assert links and links[0] == colab.colab_url(path.name)
    assert links[0].endswith(f"/notebooks/{path.name}")
    assert f"github/{colab.REPO_SLUG}/blob/" in links[0]


@pytest.mark.parametrize("path", WITH_BADGES, ids=lambda p: p.name)
def test_bootstrap_cell_and_gpu_hint(path):
    notebook = nbformat.read(path, as_version=4)
    bootstrap = notebook.cells[1]
    assert bootstrap.cell_type == "code"
    assert bootstrap.source == colab.bootstrap_source()
    assert notebook.metadata.get("accelerator") == "GPU"


def test_bootstrap_installs_only_on_colab_and_never_reinstalls_torch():
    source = colab.bootstrap_source()
    assert 'if "google.colab" in sys.modules:' in source
    pip_lines = [line for line in source.splitlines() if "%pip" in line]
    assert pip_lines and all(line.startswith("    ") for line in pip_lines), "installs must sit inside the if"
    assert "--no-deps" in pip_lines[0] and colab.REPO_SLUG in pip_lines[0]
    for line in pip_lines:
        assert not re.search(r"\b(torch|torchvision|numpy)\b", line), line


def test_apply_to_notebook_repairs_a_drifted_badge(tmp_path):
    path = tmp_path / "09_example.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell('<a href="https://example.invalid" id="colab-badge">x</a>\n# Title'),
                      nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(notebook, path)
    assert colab.apply_to_notebook(path) is True
    repaired = nbformat.read(path, as_version=4)
    assert colab.colab_url("09_example.ipynb") in repaired.cells[0].source
    assert "# Title" in repaired.cells[0].source and "example.invalid" not in repaired.cells[0].source
    assert repaired.cells[1].source == colab.bootstrap_source()
    assert repaired.cells[2].source == "print(1)"
    assert colab.apply_to_notebook(path) is False


def test_bootstrap_installs_the_locked_versions_except_colabs_own():
    """The lock's versions, except torch, torchvision and numpy (never reinstalled) and ipywidgets,
    which keeps Colab's own version when it is within pyproject's bounds (7.x is)."""
    pip_lines = [line for line in colab.bootstrap_source().splitlines() if "%pip" in line]
    installed = re.findall(r'"([^"]+)"', pip_lines[1])
    pins = colab.locked_versions((ROOT / colab.LOCK_FILE).read_text())
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    expected = []
    for dependency in dependencies:
        name = colab.requirement_name(dependency)
        if name == "ipywidgets":
            expected.append(dependency)
        elif name not in ("torch", "torchvision", "numpy"):
            expected.append(f"{name}=={pins[name]}")
    assert installed == expected
    assert "opencv-python-headless==4.14.0.94" in installed and "ipywidgets>=7.5" in installed


def test_the_ref_is_this_versions_release_tag():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert colab.REF == f"v{version}"
    assert colab.colab_url("01_data.ipynb").split("/blob/")[1].startswith(f"{colab.REF}/")
    assert colab.raw_file_url("assets/hero.png") == (
        f"https://raw.githubusercontent.com/{colab.REPO_SLUG}/{colab.REF}/assets/hero.png")


REPOSITORY_LINK = re.compile(r"https?://(?:github\.com|raw\.githubusercontent\.com|colab\.research\.google\.com/github)"
                             r"/[^\s\"')]+")


@pytest.mark.parametrize("path", WITH_BADGES, ids=lambda p: p.name)
def test_badge_bootstrap_and_links_name_one_slug_and_ref(path):
    sources = [cell.source for cell in nbformat.read(path, as_version=4).cells]
    links = [link for source in sources for link in REPOSITORY_LINK.findall(source)]
    assert len(links) >= 2, "the badge and the bootstrap's install"
    for link in links:
        assert f"/{colab.REPO_SLUG}" in link and (f"/{colab.REF}/" in link or link.endswith(f"@{colab.REF}")), link
    for source in sources:
        assert not re.search(r"@main\b|/blob/main/|githubusercontent\.com/[^/]+/[^/]+/main/", source)


@pytest.mark.parametrize("path", WITH_BADGES, ids=lambda p: p.name)
def test_figures_are_embedded_copies_of_the_files_in_assets(path):
    """A relative ../assets path breaks on Colab and in a Drive copy; a URL breaks offline."""
    markdown = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"]
    for source in markdown:
        for match in colab.MARKDOWN_IMAGE.finditer(source):
            file = colab.figure_file(match["source"], match["title"])
            assert file and match["source"].startswith("data:"), f"not embedded: {match.group(0)[:120]}"
            assert file.startswith("assets/") and (ROOT / file).is_file(), file
            encoded = match["source"].split("base64,", 1)[1]
            assert base64.b64decode(encoded) == (ROOT / file).read_bytes(), f"{file} changed: run python -m course_utils.colab"


def test_chapters_2_and_5_show_their_diagrams():
    for name, figure in (("02_cgan.ipynb", "assets/cgan_diagram.png"), ("05_aging.ipynb", "assets/pipeline_diagram.png")):
        cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
        titles = [m["title"] for c in cells if c.cell_type == "markdown" for m in colab.MARKDOWN_IMAGE.finditer(c.source)]
        assert figure in titles, name


def test_apply_to_notebook_embeds_a_figure_given_by_relative_path(tmp_path):
    path = tmp_path / "09_example.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title\n\n![the pipeline](../assets/pipeline_diagram.png)")]
    nbformat.write(notebook, path)
    assert colab.apply_to_notebook(path) is True
    markdown = nbformat.read(path, as_version=4).cells[0].source
    match = colab.MARKDOWN_IMAGE.search(markdown)
    assert match["alt"] == "the pipeline" and match["title"] == "assets/pipeline_diagram.png"
    assert base64.b64decode(match["source"].split("base64,", 1)[1]) == (ROOT / "assets" / "pipeline_diagram.png").read_bytes()
    assert colab.apply_to_notebook(path) is False


def test_locked_versions_reads_uv_and_pip_compile_lines():
    lock = "# comment\nJupyter_Book==1.0.4.post1\n    # via x\nappnope==1.0.0 ; sys_platform == 'darwin'\n"
    assert colab.locked_versions(lock) == {"jupyter-book": "1.0.4.post1", "appnope": "1.0.0"}


def test_readme_chapter_table_links_each_chapter_to_colab_at_the_ref():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        row = next(line for line in readme.splitlines() if line.startswith("| ") and f"(notebooks/{path.name})" in line)
        assert f"({colab.colab_url(path.name)})" in row, path.name


def test_an_installed_copy_gets_its_urls_without_nbformat():
    """example_photos.example_photo imports raw_file_url on Colab; the package does not depend on nbformat."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['nbformat'] = None\n"
            "from course_utils.colab import raw_file_url\n"
            "print(raw_file_url('assets/photos/camera.jpg'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == colab.raw_file_url("assets/photos/camera.jpg")
