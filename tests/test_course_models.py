"""The course's shipped long-trained models: the script that makes them, their cards, and staleness."""
import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest

from course_utils import pretrained
from course_utils.data import mini_wiki
from course_utils.data.synthetic_faces import RENDERER_VERSION

ROOT = Path(__file__).resolve().parents[1]
CARD_FIELDS = {"name", "kind", "file", "sha256", "dtype", "data", "config", "architecture", "wall_seconds",
               "machine", "commit", "figures", "curve", "curve_unit"}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """scripts/train_course_models.py --size tiny on a 300-entry mini-wiki: every model, in seconds."""
    home = tmp_path_factory.mktemp("models_home")
    patch = pytest.MonkeyPatch()
    build = mini_wiki.build_mini_wiki
    patch.setattr(mini_wiki, "build_mini_wiki", lambda out_dir, n_entries=0, **kwargs: build(out_dir, n_entries=300, **kwargs))
    patch.setattr(sys, "argv", ["train_course_models.py", "--home", str(home), "--size", "tiny", "--threads", "1"])
    patch.delenv("FACE_AGING_DATASET", raising=False)
    try:
        runpy.run_path(str(ROOT / "scripts" / "train_course_models.py"), run_name="__main__")
    finally:
        patch.undo()
    return home / "pretrained"


@pytest.mark.slow
def test_the_script_writes_every_model_with_its_card(tiny_models):
    for name in pretrained.MODELS:
        card = pretrained.card(name, tiny_models)
        assert CARD_FIELDS <= set(card), CARD_FIELDS - set(card)
        assert card["data"]["renderer_version"] == RENDERER_VERSION
        assert card["sha256"] == pretrained.file_sha256(tiny_models / card["file"])
        assert card["curve"] and card["curve_unit"] in card["curve"][0]
        assert card["commit"] and card["machine"]["cpu"] and card["wall_seconds"] > 0
        model = pretrained.load(name, tiny_models)
        assert pretrained.architecture_signature(model) == card["architecture"]
        assert not model.training


@pytest.mark.slow
def test_a_changed_weights_file_is_refused(tiny_models, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_models, folder)
    data = bytearray((folder / "gan.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "gan.pt").write_bytes(bytes(data))
    with pytest.raises(pretrained.ModelFileError, match="does not match its model card"):
        pretrained.load("gan", folder)


@pytest.mark.slow
def test_a_tiny_run_resumes_without_training_again(tiny_models, tmp_path):
    """Run again on the same home: every stage is already written, so nothing is retrained."""
    before = {path.name: path.stat().st_mtime_ns for path in tiny_models.iterdir()}
    home = tiny_models.parent
    patch = pytest.MonkeyPatch()
    patch.setattr(sys, "argv", ["train_course_models.py", "--home", str(home), "--size", "tiny",
                                "--only", "classifier", "gan", "encoder"])
    try:
        runpy.run_path(str(ROOT / "scripts" / "train_course_models.py"), run_name="__main__")
    finally:
        patch.undo()
    assert {path.name: path.stat().st_mtime_ns for path in tiny_models.iterdir()} == before


def test_the_plateau_rule():
    script = runpy.run_path(str(ROOT / "scripts" / "train_course_models.py"))
    still_improving = script["still_improving"]
    import pandas as pd

    tolerances = {"accuracy": ("up", 0.01)}
    rising = pd.DataFrame({"accuracy": [0.5, 0.6, 0.7, 0.8]})
    flat = pd.DataFrame({"accuracy": [0.5, 0.9, 0.9, 0.9, 0.905, 0.9]})
    assert still_improving(rising, tolerances, window=2)
    assert not still_improving(flat, tolerances, window=2)
    assert still_improving(flat.iloc[:3], tolerances, window=2)  # too few evaluations to tell


# ---------------------------------------------------------------- the shipped files

@pytest.mark.parametrize("name", sorted(pretrained.MODELS))
def test_each_shipped_file_matches_its_card(name):
    card = pretrained.card(name)
    assert card["size"] == "course", "a tiny run's model must never be shipped"
    assert pretrained.file_sha256(pretrained.FOLDER / card["file"]) == card["sha256"]


@pytest.mark.parametrize("name", sorted(pretrained.MODELS))
def test_shipped_models_were_trained_on_todays_renderer_and_architecture(name):
    """Fails when mini-wiki's renderer or a model class changes after the models were trained: retrain them
    with scripts/train_course_models.py."""
    card = pretrained.card(name)
    assert card["data"]["renderer_version"] == RENDERER_VERSION, (
        f"{name} was trained on renderer version {card['data']['renderer_version']}, today's is {RENDERER_VERSION}")
    model = pretrained.load(name)
    assert pretrained.architecture_signature(model) == card["architecture"], f"{name}'s architecture changed"


def test_the_shipped_models_fit_the_size_budget():
    total = sum((pretrained.FOLDER / pretrained.card(name)["file"]).stat().st_size for name in pretrained.MODELS)
    assert total <= 25e6, f"{total / 1e6:.1f} MB"


def test_a_pip_installed_course_gets_the_models_as_package_data():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"pretrained/*.pt", "pretrained/*.json"} <= set(declared["course_utils"])
    assert pretrained.FOLDER == ROOT / "course_utils" / "pretrained"


def test_the_signature_sees_an_architecture_change():
    """The staleness check can fail: the same weights in a model with one layer changed sign differently."""
    from torch import nn

    model = pretrained.load("encoder")
    assert pretrained.architecture_signature(model) == pretrained.card("encoder")["architecture"]
    model.head[2] = nn.LeakyReLU(0.2)  # the hidden layer's activation, no weights of its own
    assert pretrained.architecture_signature(model) != pretrained.card("encoder")["architecture"]
