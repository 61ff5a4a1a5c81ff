"""Chapters 2 and 5 run end to end with three age groups of a learner's own (chapter 1's exercise), tiny size.

Chapter 1's exercise says chapters 2-5 follow the groups of chapter 1's last cache. Chapter 2 samples
every group; chapter 5 moves each face to the oldest group (the oldest to the youngest): its ground
truth, the classifier's verdict and the real photograph must all work with three groups, not only two.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from test_real_layout_course import cell_text, checkpoint_cell, errors

ROOT = Path(__file__).resolve().parents[1]
THREE = [(20, 30), (40, 50), (60, 70)]

pytestmark = pytest.mark.slow


def test_chapters_2_and_5_with_three_age_groups(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from course_utils.data import download_dataset, load_face_cache

    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    download_dataset("mini-wiki", progress=False, mini_wiki_entries=1300)
    faces = load_face_cache(age_groups=THREE, progress=False)  # what chapter 1's exercise does
    assert len(faces.age_groups) == 3

    for name in ("02_cgan.ipynb", "05_aging.ipynb"):
        notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}})
        try:
            client.execute()  # raises CellExecutionError if a cell or an assert fails
        finally:
            nbformat.write(notebook, tmp_path / name)
        assert not errors(notebook)
    setup = next(c for c in notebook.cells if c.cell_type == "code" and "course.ensure_faces()" in c.source)
    assert "'20-30', '40-50', '60-70'" in cell_text(setup)
    printed = "".join(cell_text(c) for c in notebook.cells if c.cell_type == "code")
    assert "input + mean group difference" in printed  # the ground-truth table, moved between 3 groups
    assert "judged to be in their target group" in printed
    assert "aged to 60-70" in printed or "aged to 20-30" in printed  # the real photograph
    assert "the mini-wiki thresholds do not apply" in cell_text(checkpoint_cell(notebook))
