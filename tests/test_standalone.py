"""A chapter opened on its own (as on Colab) rebuilds what the earlier chapters would have made.

Each setup cell of chapters 2-5 is taken from the committed notebook and run on
an empty course home, with the course's sizes shrunk (a 240-photo mini-wiki, a
few training steps) so that the proof costs seconds instead of the ~9 minutes
of the real rebuild. The browser test then runs chapter 5 on a trained home.
"""
from pathlib import Path

import nbformat
import pytest

import course_utils.data.mini_wiki as mini_wiki
from course_utils import course, paths

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# The checkpoints each chapter's setup must leave behind on an empty home.
NEEDS = {
    "02_cgan.ipynb": set(),
    "03_conditioning.ipynb": {"gan.pt"},
    "04_encoder.ipynb": {"gan.pt"},
    "05_aging.ipynb": {"gan.pt", "classifier.pt", "encoder.pt"},
}


def setup_cell(notebook: str) -> str:
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Setup"))
    return next(c for c in cells[start + 1:] if c.cell_type == "code").source


@pytest.fixture
def tiny_course(monkeypatch):
    """The course's own rebuilding code, at tiny sizes."""
    build = mini_wiki.build_mini_wiki
    monkeypatch.setattr(mini_wiki, "build_mini_wiki",
                        lambda out_dir, n_entries=0, **kwargs: build(out_dir, n_entries=240, **kwargs))
    gan_config, encoder_config = course.gan_config, course.encoder_config
    monkeypatch.setattr(course, "gan_config", lambda faces=None, device=None, **overrides: gan_config(
        faces, device, **{"steps": 3, "width": 8, "batch_size": 16, "sample_every": 3, **overrides}))
    monkeypatch.setattr(course, "encoder_config", lambda generator, device=None, **overrides: encoder_config(
        generator, device, **{"steps": 3, "width": 8, "batch_size": 16, "eval_pairs": 32, **overrides}))
    monkeypatch.setattr(course, "CLASSIFIER_EPOCHS", 1)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)


@pytest.mark.parametrize("notebook", sorted(NEEDS))
def test_setup_cell_gets_earlier_outputs_only_through_ensure(notebook):
    source = setup_cell(notebook)
    assert "course.ensure_faces()" in source
    assert "load_generator" not in source and "load_encoder" not in source and "torch.load" not in source


@pytest.mark.parametrize("notebook", sorted(NEEDS))
def test_chapter_setup_runs_on_an_empty_home(notebook, tiny_course, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "empty_home"))
    exec(compile(setup_cell(notebook), notebook, "exec"), {"__name__": "__main__"})
    made = {path.name for path in paths.run_dir().glob("*.pt")}
    assert NEEDS[notebook] <= made, made
    if NEEDS[notebook]:
        assert "is missing: rebuilding" in capsys.readouterr().out
