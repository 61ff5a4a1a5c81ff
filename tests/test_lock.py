"""requirements.lock and pyproject.toml agree, and the environment the tests run in is the lock.

`make lock` writes the lock with uv from pyproject's dependencies, its dev extra and its `torch` and
`site` groups; `make setup`, `make site`, environment.yml and the Colab bootstrap install from it.
"""
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from course_utils.colab import LOCK_FILE, locked_versions, requirement_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_TEXT = (ROOT / LOCK_FILE).read_text()
PINS = locked_versions(LOCK_TEXT)
SOURCE = re.compile(r"course-utils \(pyproject\.toml(?::(?P<group>[\w-]+))?\)|-r (?P<file>\S+)")


def pyproject_requirements() -> list[Requirement]:
    """Everything pyproject asks for: the package's dependencies, the dev extra, every dependency group."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = list(pyproject["project"]["dependencies"])
    for requirements in pyproject["project"]["optional-dependencies"].values():
        listed += requirements
    for requirements in pyproject["dependency-groups"].values():
        listed += requirements
    return [Requirement(text) for text in listed]


def lock_sources() -> dict[str, set[str]]:
    """Package -> what the lock's `# via` comments say asked for it: pyproject.toml, a group, or a package."""
    sources, current = {}, None
    for line in LOCK_TEXT.splitlines():
        pin = re.match(r"([A-Za-z0-9_.-]+)==", line)
        if pin:
            current = requirement_name(pin.group(1))
            sources[current] = set()
            continue
        comment = re.match(r"\s+#\s+(?:via\s*)?(\S.*)?$", line)
        if current and comment and comment.group(1):
            sources[current].add(comment.group(1).strip())
    return sources


def test_every_requirement_is_locked_within_its_bounds():
    for requirement in pyproject_requirements():
        name = requirement_name(requirement.name)
        assert name in PINS, f"{name} is not in {LOCK_FILE}: run `make lock`"
        assert requirement.specifier.contains(PINS[name], prereleases=True), (
            f"{LOCK_FILE} pins {name}=={PINS[name]}, outside pyproject's {requirement}: run `make lock`")


def test_the_lock_was_made_from_this_pyproject():
    """What the lock says pyproject asked for is what pyproject asks for, nothing more (a removed one)."""
    asked_by_pyproject = {name for name, sources in lock_sources().items()
                          if any(SOURCE.fullmatch(source) for source in sources)}
    assert asked_by_pyproject == {requirement_name(r.name) for r in pyproject_requirements()}


def test_the_lock_pins_one_version_of_each_package():
    names = [requirement_name(match) for match in re.findall(r"^([A-Za-z0-9_.-]+)==", LOCK_TEXT, re.M)]
    assert len(names) == len(set(names)), "a package locked twice (per-Python forks): `make lock` uses --fork-strategy fewest"


def test_the_environment_running_the_tests_is_the_lock():
    """`make setup` installs from the lock: every locked package present here has the locked version
    (a local build label such as +cpu aside), and every package the course and its tests need is present."""
    installed = {requirement_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    off_lock = {name: version for name, version in installed.items()
                if name in PINS and Version(version) not in SpecifierSet(f"=={PINS[name]}")}
    assert not off_lock, f"installed versions that are not {LOCK_FILE}'s: {off_lock}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = pyproject["project"]["dependencies"] + pyproject["project"]["optional-dependencies"]["dev"]
    assert not [r for r in needed if requirement_name(r) not in installed]
