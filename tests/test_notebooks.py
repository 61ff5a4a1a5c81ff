"""The committed notebooks are executed, error-free, and each asserts its learning outcome."""
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IGNORE_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "nbval-ignore-output", "nbval-skip")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_without_errors(path):
    code_cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    for index, cell in enumerate(code_cells):
        assert cell.execution_count is not None, f"code cell {index} was never executed"
        assert not [o for o in cell.outputs if o.output_type == "error"], f"code cell {index} holds an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_checkpoint_asserts_and_no_ignored_cells(path):
    cells = nbformat.read(path, as_version=4).cells
    sources = [c.source for c in cells if c.cell_type == "code"]
    assert any(re.search(r"^assert\b", source, re.M) for source in sources), "no checkpoint cell"
    for cell in cells:
        assert not any(marker in cell.source or marker in cell.metadata.get("tags", []) for marker in IGNORE_MARKERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_teaches_in_prose_and_ends_with_exercises(path):
    """Prose opens and closes the chapter, and at least a third of the cells are prose."""
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and cells[-1].cell_type == "markdown"
    assert "Exercises" in cells[-1].source
    markdown_count = sum(c.cell_type == "markdown" for c in cells)
    assert markdown_count >= len(cells) // 3


CHECK_TAG = "nbval-check-output"
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_some_outputs_are_compared(path):
    """Whether a compared output is machine-independent is proved by `make nbval` under other kernels."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    compared = [c for c in cells if CHECK_TAG in c.metadata.get("tags", [])]
    assert compared, f"{path.name} compares no output at all"
    for cell in compared:
        assert cell.outputs, f"a compared cell has no committed output:\n{cell.source[:200]}"


def test_pytest_configuration_runs_notebooks_the_make_way():
    """`pytest --nbval notebooks/` by hand must apply what `make nbval` applies."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    options = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "--nbval-lax" in options and "--nbval-current-env" in options
    sanitize = re.search(r"--nbval-sanitize-with[= ](\S+)", options).group(1)
    assert (root / sanitize).is_file()
    makefile = (root / "Makefile").read_text()
    nbval_recipe = makefile.split("\nnbval:", 1)[1].split("\n\n", 1)[0]
    assert "--nbval-sanitize-with" not in nbval_recipe, "the options belong in pyproject.toml only"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_reads_no_repository_file_by_a_relative_path(path):
    """On Colab only the package is installed: a cell that opens '../assets/...' fails there.
    Repository files go through the package (e.g. ``example_photos.example_photo``)."""
    sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert not [s for s in sources if re.search(r"""["']\.\./""", s)]
