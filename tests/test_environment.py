"""environment.yml and pyproject.toml must list the same packages with the same lower bounds."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells these differently (py-opencv: OpenCV's Python bindings, Haar cascades included)
CONDA_NAMES = {"pytorch": "torch", "py-opencv": "opencv-python-headless"}


def parse_requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(>=\s*[\w.]+(?:\s*,\s*<\s*[\w.]+)?)?\s*", text)
    assert match, f"unparsable requirement {text!r}"
    return match.group(1).lower(), (match.group(2) or "").replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(parse_requirement(r) for r in listed)


def conda_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("dependencies:") + 1
    found = {}
    for line in lines[start:]:
        if not line.strip().startswith("- "):
            break
        name, bound = parse_requirement(line.strip()[2:])
        if name != "python":
            found[CONDA_NAMES.get(name, name)] = bound
    return found


def test_environment_yml_matches_pyproject():
    assert conda_requirements() == pyproject_requirements()


def test_design_card_packages_are_listed():
    listed = pyproject_requirements()
    for name in ("torch", "torchvision", "jupyterlab", "nbval", "matplotlib",
                 "ipywidgets", "scipy", "pandas", "numpy", "pillow", "tqdm"):
        assert name in listed, name
