"""Every chapter opens with its own Colab badge and a bootstrap cell that is harmless elsewhere."""
import re
from pathlib import Path

import nbformat
import pytest

from course_utils import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_six_chapters():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_points_at_its_own_notebook(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    links = re.findall(r'href="([^"]+)"', first.source)
    assert links and links[0] == colab.colab_url(path.name)
    assert links[0].endswith(f"/notebooks/{path.name}")
    assert f"github/{colab.REPO_SLUG}/blob/" in links[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
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


def test_bootstrap_installs_pyprojects_dependencies_with_their_bounds():
    """One list of dependencies: the face detector needs opencv-python-headless below 5 on Colab too."""
    import tomllib

    pip_lines = [line for line in colab.bootstrap_source().splitlines() if "%pip" in line]
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        name = re.match(r"[A-Za-z0-9_.-]+", dependency).group()
        if name in colab.COLAB_PREINSTALLED:
            continue
        assert f'"{dependency}"' in pip_lines[1], dependency
    assert '"opencv-python-headless>=4.5,<5"' in pip_lines[1]
