"""environment.yml gives a conda user what `make setup` gives: Python 3.11 from conda, then pip installs
the course package with its dev tools and pyproject's torch group, every version from requirements.lock."""
import re
import tomllib
from pathlib import Path

import yaml

from course_utils.colab import requirement_name

ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_and_pip_sections() -> tuple[list[str], list[str]]:
    dependencies = environment()["dependencies"]
    conda = [entry for entry in dependencies if isinstance(entry, str)]
    pip_sections = [entry["pip"] for entry in dependencies if isinstance(entry, dict)]
    assert len(pip_sections) == 1, "one pip section"
    return conda, pip_sections[0]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_conda_brings_only_python_and_pip():
    """Every package comes from pip and the lock: no conda-forge build of a package pip also installs."""
    conda, _ = conda_and_pip_sections()
    assert sorted(re.split(r"[=<>!]", entry)[0] for entry in conda) == ["pip", "python"]


def test_conda_python_is_a_supported_one():
    conda, _ = conda_and_pip_sections()
    python = next(entry for entry in conda if entry.startswith("python"))
    assert python == "python=3.11"
    assert pyproject()["project"]["requires-python"] == ">=3.11"


def test_pip_section_installs_the_package_as_make_setup_does():
    _, pip = conda_and_pip_sections()
    assert "--constraint requirements.lock" in pip
    assert "-e .[dev]" in pip, "the course package itself, with the dev tools (jupyterlab, nbval, pytest, playwright)"
    torch_group = [requirement_name(r) for r in pyproject()["dependency-groups"]["torch"]]
    named = [entry for entry in pip if not entry.startswith("-")]
    assert named == torch_group, "pip reads no dependency groups from a requirements file: torch is named here"
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := requirements.lock" in makefile
    assert "--constraint $(LOCK) --group torch -e '.[dev]'" in makefile


def test_playwright_is_the_python_package_from_pypi():
    """conda-forge's `playwright` is another package than PyPI's Python one: it comes from pip here."""
    dev = [requirement_name(r) for r in pyproject()["project"]["optional-dependencies"]["dev"]]
    assert "playwright" in dev
    conda, _ = conda_and_pip_sections()
    assert not [entry for entry in conda if "playwright" in entry]


def test_design_card_packages_are_listed():
    project = pyproject()["project"]
    listed = {requirement_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    for name in ("torch", "torchvision", "jupyterlab", "nbval", "matplotlib",
                 "ipywidgets", "scipy", "pandas", "numpy", "pillow", "tqdm"):
        assert name in listed, name
