"""Chapters 1-5 run end to end on the real wiki layout, downloaded from a mirror, at the tiny size.

A small archive in the exact layout of the published ``wiki_crop.tar`` (``wiki_crop/wiki.mat``
and ``wiki_crop/NN/*.jpg``, no mini-wiki sidecar, so no ground truth) is served from
127.0.0.1 by a plain static file server, as a learner's own mirror would be. The committed
notebooks are executed in order, as ``make course`` does, with ``FACE_AGING_DATASET=wiki``,
``FACE_AGING_DATA_URL`` pointing at the mirror and ``FACE_AGING_RUN_SIZE=tiny``; the executed
copies are written to a temporary folder, never over the committed notebooks. Every cell must
run, so every assert of every checkpoint cell held: those that hold on any dataset.
"""
from __future__ import annotations

import functools
import os
import tarfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from conftest import served_on_localhost

from course_utils.data.mini_wiki import SIDECAR_NAME, build_mini_wiki

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-5]_*.ipynb"))
# Enough photos for every chapter: chapter 5 draws 96 held-out faces (15 % of the cached ones,
# split by person), chapter 1 shows 24 faces of each age group.
ENTRIES = 1300
NOT_APPLIED = "the mini-wiki thresholds do not apply"

pytestmark = pytest.mark.slow


def repack_as_real_archive(mini_archive: Path, out: Path) -> Path:
    """``mini_wiki_crop.tar`` without its sidecar: the members the published ``wiki_crop.tar`` has."""
    with tarfile.open(mini_archive) as source, tarfile.open(out, "w") as target:
        for member in source:
            if member.name == f"wiki_crop/{SIDECAR_NAME}":
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return out


class MirrorHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        self.server.requests.append(self.path)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A static file server on 127.0.0.1 holding only ``wiki_crop.tar``."""
    folder = tmp_path_factory.mktemp("mirror")
    built = build_mini_wiki(tmp_path_factory.mktemp("build"), n_entries=ENTRIES, seed=1, workers=2, progress=False)
    repack_as_real_archive(built, folder / "wiki_crop.tar")
    built.unlink()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(MirrorHandler, directory=str(folder)))
    httpd.requests = []
    with served_on_localhost(httpd):
        yield httpd


def cell_text(cell) -> str:
    """What a code cell printed (streams and plain-text results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def checkpoint_cell(notebook):
    """The first code cell after the '## Checkpoint' heading."""
    cells = notebook.cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Checkpoint" in c.source)
    return next(c for c in cells[start + 1:] if c.cell_type == "code")


def errors(notebook) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in notebook.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def run_chapters(out_dir: Path) -> dict[str, nbformat.NotebookNode]:
    """Execute chapters 1-5 in order; a failing cell (or assert) raises CellExecutionError."""
    from nbclient import NotebookClient

    executed = {}
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})  # ../assets resolves
        try:
            client.execute()
        finally:
            nbformat.write(notebook, out_dir / path.name)  # the executed copy, kept for inspection
        executed[path.stem] = notebook
    return executed


def test_chapters_1_to_5_on_a_real_layout_wiki_mirror(mirror, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FACE_AGING_HOME", str(home))
    monkeypatch.setenv("FACE_AGING_DATASET", "wiki")
    monkeypatch.setenv("FACE_AGING_DATA_URL", mirror.url)
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernels import the course_utils this test imports.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    (tmp_path / "executed").mkdir()

    executed = run_chapters(tmp_path / "executed")  # raises CellExecutionError if a cell or assert fails
    assert not any(errors(notebook) for notebook in executed.values())

    assert mirror.requests == ["/wiki_crop.tar"]
    data = home / "datasets" / "wiki" / "wiki_crop"
    assert (data / "wiki.mat").is_file() and not (data / SIDECAR_NAME).exists()
    assert not (home / "datasets" / "mini-wiki").exists()

    # Chapter 1: the funnel ran on the downloaded wiki metadata.
    chapter1 = executed["01_data"]
    printed = "".join(cell_text(c) for c in chapter1.cells if c.cell_type == "code")
    assert "dataset: wiki" in printed
    assert f"{ENTRIES:,} entries" in printed
    assert "checkpoint passed:" in cell_text(checkpoint_cell(chapter1))
    assert (home / "cache" / "wiki").is_dir() and not (home / "cache" / "mini-wiki").exists()

    # Chapters 2-5: only the checks that hold on every dataset were asserted.
    for name in ("02_cgan", "03_conditioning", "04_encoder", "05_aging"):
        assert NOT_APPLIED in cell_text(checkpoint_cell(executed[name])), name
        assert "(wiki, FACE_AGING_RUN_SIZE=tiny" in cell_text(checkpoint_cell(executed[name])), name

    # The models were trained for the wiki run, and nothing was made for mini-wiki.
    assert {p.name for p in (home / "runs" / "wiki").glob("*.pt")} >= {"gan.pt", "classifier.pt", "encoder.pt"}
    assert not (home / "runs" / "mini-wiki").exists()
    # A smoke run's encoder cannot beat the mean face on real photos (13.3 vs 15.4 dB measured), and its
    # 120-step generator has not learnt mini-wiki's subtle age cues (conditioning accuracy 0.50): chapters
    # 4 and 3 report them (and say the mini-wiki thresholds do not apply, checked above) instead of asserting them.
    assert "held-out PSNR" in cell_text(checkpoint_cell(executed["04_encoder"]))
    assert "conditioning accuracy" in cell_text(checkpoint_cell(executed["03_conditioning"]))
