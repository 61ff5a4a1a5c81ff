"""A chapter opened on its own (as on Colab) rebuilds what the earlier chapters would have made.

Each setup cell of chapters 2-6 is taken from the committed notebook and run on
an empty course home, with the course's sizes shrunk (a 240-photo mini-wiki, a
few training steps) so that the proof costs seconds instead of minutes: with the
course's shipped models, and with the learner's own (USE_COURSE_MODELS = False).
"""
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import course_utils.data.mini_wiki as mini_wiki
from course_utils import course, paths

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# The checkpoints each chapter's setup must leave behind on an empty home when it uses the learner's
# own models (USE_COURSE_MODELS = False); with the course's shipped models it trains nothing.
NEEDS = {
    "02_cgan.ipynb": set(),
    "03_conditioning.ipynb": {"gan.pt", "classifier.pt"},
    "04_encoder.ipynb": {"gan.pt", "classifier.pt"},
    "05_aging.ipynb": {"gan.pt", "classifier.pt", "encoder.pt"},
}


def setup_cell(notebook: str, use_course_models: bool = True) -> str:
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Setup"))
    source = next(c for c in cells[start + 1:] if c.cell_type == "code").source
    if not use_course_models:
        assert "USE_COURSE_MODELS = True" in source
        source = source.replace("USE_COURSE_MODELS = True", "USE_COURSE_MODELS = False")
    return source


@pytest.fixture
def tiny_course(monkeypatch):
    """The course's own rebuilding code, at tiny sizes."""
    build = mini_wiki.build_mini_wiki
    monkeypatch.setattr(mini_wiki, "build_mini_wiki",
                        lambda out_dir, n_entries=0, **kwargs: build(out_dir, n_entries=240, **kwargs))
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")  # presets: a few steps, narrow models
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)


@pytest.mark.parametrize("notebook", sorted(NEEDS))
def test_setup_cell_gets_earlier_outputs_only_through_ensure(notebook):
    source = setup_cell(notebook)
    assert "course.ensure_faces()" in source
    assert "load_generator" not in source and "load_encoder" not in source and "torch.load" not in source
    if notebook != "02_cgan.ipynb":
        assert "course.chapter_models(faces, USE_COURSE_MODELS" in source


@pytest.mark.parametrize("notebook", sorted(NEEDS))
def test_chapter_setup_runs_on_an_empty_home(notebook, tiny_course, tmp_path, monkeypatch, capsys):
    """With the course's models a chapter trains nothing; with your own it rebuilds what it lacks."""
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "empty_home"))
    namespace = {"__name__": "__main__"}
    exec(compile(setup_cell(notebook), notebook, "exec"), namespace)
    assert not list(paths.run_dir().glob("*.pt"))
    if "models" in namespace:
        assert namespace["models"].from_course
    if NEEDS[notebook]:
        exec(compile(setup_cell(notebook, use_course_models=False), notebook, "exec"), {"__name__": "__main__"})
        made = {path.name for path in paths.run_dir().glob("*.pt")}
        assert NEEDS[notebook] <= made, made
        assert "is missing: rebuilding" in capsys.readouterr().out


def test_chapter1_age_groups_carry_over_to_later_chapters(tiny_course, tmp_path, monkeypatch, capsys):
    """A learner changes the groups in chapter 1: chapters 2-5 follow with no other edit. The course's
    two-group models do not fit three groups, so chapter 5 says so and uses (and retrains) the learner's own."""
    from course_utils.data import load_face_cache

    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "home"))
    exec(compile(setup_cell("05_aging.ipynb", use_course_models=False), "05_aging.ipynb", "exec"),
         {"__name__": "__main__"})
    assert "rebuilding" in capsys.readouterr().out

    three = [(20, 30), (40, 50), (60, 70)]
    load_face_cache(age_groups=three, progress=False)  # what chapter 1's exercise does
    namespace = {"__name__": "__main__"}
    exec(compile(setup_cell("05_aging.ipynb"), "05_aging.ipynb", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Using your own models instead of the course's" in out and "3 groups" in out
    assert out.count("retraining it") == 3, out  # generator, classifier, encoder
    assert namespace["faces"].age_groups == tuple(three)
    assert namespace["generator"].n_classes == namespace["classifier"].n_classes == 3
    assert namespace["encoder"](torch.zeros(1, 3, 64, 64)).shape == (1, namespace["generator"].z_dim)
    faces = namespace["faces"]  # chapter 5's ground truth moves each face to its target group
    target, truth = course.ground_truth_at_other_group(faces, np.arange(6))
    assert target.tolist() == course.aging_targets(faces.labels[:6], 3).tolist()
    assert truth.shape == (6, *faces.images.shape[1:]) and truth.dtype == np.uint8


@pytest.mark.parametrize("note", ["not json", '{"age_groups": [[30, 20]], "image_size": 64}',
                                  '{"age_groups": [[20, 30], [40, 50]], "image_size": "64"}', "[]"])
def test_a_bad_settings_note_in_the_cache_falls_back_to_the_defaults(note, tmp_path, monkeypatch, capsys):
    from course_utils.data import DEFAULT_AGE_GROUPS, latest_face_settings

    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    assert latest_face_settings("mini-wiki")["age_groups"] == DEFAULT_AGE_GROUPS  # nothing built yet
    paths.cache_dir("mini-wiki").mkdir(parents=True)
    (paths.cache_dir("mini-wiki") / "latest.json").write_text(note)
    assert latest_face_settings("mini-wiki") == {"age_groups": DEFAULT_AGE_GROUPS, "image_size": 64}
    assert "ignoring latest.json" in capsys.readouterr().out


def test_chapter6_setup_runs_on_an_empty_home_and_leaves_chapter1s_note(tiny_course, tmp_path, monkeypatch):
    """Chapter 6 needs no earlier model; its side cache of six groups never becomes 'the latest settings'."""
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "home"))
    namespace = {"__name__": "__main__"}
    exec(compile(setup_cell("06_age_axis.ipynb"), "06_age_axis.ipynb", "exec"), namespace)
    assert len(namespace["faces"].age_groups) == 6
    assert not (paths.cache_dir() / "latest.json").exists()
    assert namespace["train_idx"].size and namespace["val_idx"].size
