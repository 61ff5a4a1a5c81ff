"""The face cache against hostile metadata and a shared course home: paths that leave the dataset
folder, FIFOs and devices, two builders at once, leftovers of a killed run, a read-only home."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from course_utils.data import build_mini_wiki, load_face_cache, safe_extract
from course_utils.data.crops import NOT_A_DATASET_FILE, OK

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mini_wiki(tmp_path_factory):
    """An extracted 40-photo mini-wiki folder (wiki_crop/) and the faces of a clean build of it."""
    folder = tmp_path_factory.mktemp("mini")
    safe_extract(build_mini_wiki(folder, n_entries=40, seed=11, workers=1, progress=False), folder,
                 expected_folder="wiki_crop")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACE_AGING_HOME", str(folder / "clean-home"))
        clean = load_face_cache("mini-wiki", dataset_root=folder / "wiki_crop", workers=1, progress=False)
    return folder / "wiki_crop", clean


def copy_of(root: Path, destination: Path) -> Path:
    shutil.copytree(root, destination, symlinks=True)
    return destination


def point_rows_at(root: Path, new_paths: dict) -> None:
    """Rewrite wiki.mat so that the rows whose full_path is a key point at its value instead."""
    contents = scipy.io.loadmat(str(root / "wiki.mat"))
    struct = contents["wiki"]
    cells = struct[0, 0]["full_path"]
    for i in range(cells.shape[1]):
        old = str(np.asarray(cells[0, i]).ravel()[0])
        if old in new_paths:
            cells[0, i] = np.array([new_paths[old]])
    scipy.io.savemat(str(root / "wiki.mat"), {"wiki": struct})


HOSTILE_BUILD = """
import json, os, sys, time
opened = []

def record_opens(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))

sys.addaudithook(record_opens)
from course_utils.data import load_face_cache
started = time.perf_counter()
faces = load_face_cache("mini-wiki", dataset_root=sys.argv[1], workers=1, progress=False, remember=False)
print(json.dumps({"opened": opened, "seconds": time.perf_counter() - started,
                  "removed": dict(zip(faces.funnel["rule"], faces.funnel["removed"].tolist())),
                  "paths": faces.table["full_path"].tolist()}))
"""


def build_with_paths(mini_wiki, tmp_path, hostile) -> dict:
    """Point some photos of a copy of the mini-wiki at ``hostile(root, photo_folder)`` paths, build its face
    cache in a fresh process (its /dev/stdin a pipe nobody writes to) and report what the build opened."""
    clean_root, clean = mini_wiki
    root = copy_of(clean_root, tmp_path / "data" / "wiki_crop")
    folder = Path(clean.table["full_path"].iloc[0]).parent.name  # a photo folder such as "07"
    paths = hostile(root, folder)
    victims = clean.table["full_path"].iloc[1:1 + len(paths)].tolist()
    assert len(victims) == len(paths)
    point_rows_at(root, dict(zip(victims, paths)))
    stdin_reader, stdin_writer = os.pipe()
    try:
        result = subprocess.run([sys.executable, "-c", HOSTILE_BUILD, str(root)], stdin=stdin_reader,
                                capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                                env={**os.environ, "FACE_AGING_HOME": str(tmp_path / "home")})
    except subprocess.TimeoutExpired:
        pytest.fail("the cache build hung on a path named in wiki.mat")
    finally:
        os.close(stdin_reader)
        os.close(stdin_writer)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"built in {report['seconds']:.1f} s")
    report["opened"] = {os.path.realpath(p) for p in report["opened"]} | set(report["opened"])
    report["victims"] = victims
    return report


def assert_counted_not_used(report, mini_wiki, count):
    assert report["seconds"] < 20
    assert report["removed"][NOT_A_DATASET_FILE] == count
    assert sorted(report["paths"]) == sorted(set(mini_wiki[1].table["full_path"]) - set(report["victims"]))
    assert mini_wiki[1].funnel.set_index("rule").loc[NOT_A_DATASET_FILE, "removed"] == 0


def test_metadata_paths_that_leave_the_dataset_folder_are_counted_never_opened(mini_wiki, tmp_path):
    outside = tmp_path / "outside.jpg"
    shutil.copy(mini_wiki[0] / mini_wiki[1].table["full_path"].iloc[0], outside)  # a real photo, not the course's
    (tmp_path / "secret").mkdir()
    shutil.copy(outside, tmp_path / "secret" / "photo.jpg")

    def hostile(root, folder):
        (root / folder / "link.jpg").symlink_to(outside)
        return ["../../secret/photo.jpg", str(outside), "/etc/passwd", "/proc/self/mem", f"{folder}/link.jpg",
                f"{folder}/../../../secret/photo.jpg"]

    report = build_with_paths(mini_wiki, tmp_path, hostile)
    assert report["opened"].isdisjoint({str(outside), str(tmp_path / "secret" / "photo.jpg"), "/etc/passwd",
                                        "/proc/self/mem"})
    assert_counted_not_used(report, mini_wiki, 6)


def test_metadata_paths_at_fifos_devices_and_folders_never_block_the_build(mini_wiki, tmp_path):
    os.mkfifo(tmp_path / "outside.fifo")

    never_opened = {str(tmp_path / "outside.fifo"), "/dev/zero", "/dev/stdin"}

    def hostile(root, folder):
        os.mkfifo(root / folder / "fifo.jpg")
        never_opened.update({str(root / folder / "fifo.jpg"), str(root / folder)})
        return [f"{folder}/fifo.jpg", str(tmp_path / "outside.fifo"), "/dev/zero", "/dev/stdin", folder]

    report = build_with_paths(mini_wiki, tmp_path, hostile)
    assert report["opened"].isdisjoint(never_opened)
    assert_counted_not_used(report, mini_wiki, 5)
