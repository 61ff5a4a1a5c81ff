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
from course_utils.data.crops import NOT_A_DATASET_FILE

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


# ---------------------------------------------------------------- a course home shared by processes and people

def cache_digest(faces) -> str:
    import hashlib

    digest = hashlib.sha256(faces.images.tobytes())
    digest.update(faces.table.to_json(orient="table", index=False).encode())
    digest.update(faces.funnel.to_csv(index=False).encode())
    return digest.hexdigest()


def build_in_turns(root, home, trials, barrier, results):
    """One of two rival builders: each trial, build (or read) the cache as soon as the barrier opens."""
    os.environ["FACE_AGING_HOME"] = home
    from course_utils.data import load_face_cache

    for trial in range(trials):
        barrier.wait()  # the parent has deleted the cache: start together
        try:
            faces = load_face_cache("mini-wiki", dataset_root=root, workers=1, progress=False)
            results.put((trial, cache_digest(faces)))
        except Exception as error:  # what the parent must never see
            results.put((trial, f"{type(error).__name__}: {error}"))
        barrier.wait()  # both done


@pytest.mark.slow
def test_two_processes_building_the_same_cache_at_once_both_read_a_clean_build(mini_wiki, tmp_path):
    import multiprocessing

    root, clean = mini_wiki
    trials = 20
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3, timeout=120), context.Queue()
    home = tmp_path / "home"
    rivals = [context.Process(target=build_in_turns, args=(str(root), str(home), trials, barrier, results))
              for _ in range(2)]
    for rival in rivals:
        rival.start()
    try:
        outcomes = []
        for _ in range(trials):
            shutil.rmtree(home / "cache", ignore_errors=True)
            barrier.wait()
            barrier.wait()
            outcomes += [results.get(timeout=60) for _ in rivals]
    finally:
        for rival in rivals:
            rival.join(timeout=60)
            if rival.is_alive():
                rival.kill()
    failures = [outcome for _, outcome in outcomes if outcome != cache_digest(clean)]
    assert not failures, f"{len(failures)} of {2 * trials} builds failed or differ: {failures[:3]}"
    assert len(outcomes) == 2 * trials


def test_a_second_builder_waits_for_the_first_and_says_so(mini_wiki, tmp_path, monkeypatch, capsys):
    from course_utils.data.cache import BUILD_LOCK
    from course_utils.files import exclusive

    root, clean = mini_wiki
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    lock = tmp_path / "cache" / "mini-wiki" / BUILD_LOCK
    rival = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom course_utils.files import exclusive\n"
                              "with exclusive(sys.argv[1], 'a test'):\n    print('held', flush=True)\n"
                              "    time.sleep(3)\n", str(lock)], cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
    try:
        assert rival.stdout.readline().strip() == "held"
        faces = load_face_cache("mini-wiki", dataset_root=root, workers=1, progress=False)
    finally:
        rival.wait(timeout=30)
    assert "Another notebook or process is building the mini-wiki face cache; waiting" in capsys.readouterr().out
    assert cache_digest(faces) == cache_digest(clean)
    with exclusive(lock, "a test"):  # released again
        pass


def test_staging_left_by_a_killed_build_is_removed_by_the_next(mini_wiki, tmp_path, monkeypatch):
    root, clean = mini_wiki
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    leftover = tmp_path / "cache" / "mini-wiki" / ".0123456789abcdef-k1ll3d"
    leftover.mkdir(parents=True)
    np.save(leftover / "images.npy", np.zeros((100, 64, 64, 3), np.uint8))
    load_face_cache("mini-wiki", dataset_root=root, workers=1, progress=False)
    assert not leftover.exists()
    assert not [p for p in (tmp_path / "cache" / "mini-wiki").iterdir() if p.name.startswith(".")]


def test_a_planted_link_at_the_settings_note_is_never_written_through(mini_wiki, tmp_path, monkeypatch):
    root, _ = mini_wiki
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("a file the learner can write")
    folder = tmp_path / "cache" / "mini-wiki"
    folder.mkdir(parents=True)
    (folder / "latest.json.tmp").symlink_to(victim)  # the name an older course wrote through
    load_face_cache("mini-wiki", dataset_root=root, workers=1, progress=False, image_size=32)
    assert victim.read_text() == "a file the learner can write"
    assert json.loads((folder / "latest.json").read_text())["image_size"] == 32


READ_ONLY_HOME = """
import errno, os, sys
home = os.path.realpath(sys.argv[1])
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def read_only(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        writing = (mode and any(c in mode for c in "wax+")) or (flags or 0) & WRITES
        if writing and os.path.realpath(os.fsdecode(path)).startswith(home):
            raise PermissionError(errno.EROFS, "Read-only file system", os.fsdecode(path))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.symlink", "os.link"):
        if os.path.realpath(os.fsdecode(args[0])).startswith(home):
            raise PermissionError(errno.EROFS, "Read-only file system", os.fsdecode(args[0]))


sys.addaudithook(read_only)
from course_utils.data import load_face_cache
for size in (64, 32):  # chapter 1's cache (the note is right), then another (the note cannot be changed)
    faces = load_face_cache("mini-wiki", dataset_root=sys.argv[2], workers=1, progress=False, image_size=size)
    print("read", len(faces), faces.images.shape[1], flush=True)
"""


def test_a_read_only_home_with_valid_caches_still_reads_them(mini_wiki, tmp_path):
    root, clean = mini_wiki
    env = {**os.environ, "FACE_AGING_HOME": str(tmp_path)}
    for size in (32, 64):  # both caches built, chapter 1's (64 px) last: its note is the one written
        subprocess.run([sys.executable, "-c", "import sys\nfrom course_utils.data import load_face_cache\n"
                        f"load_face_cache('mini-wiki', dataset_root=sys.argv[1], workers=1, progress=False, "
                        f"image_size={size})", str(root)], env=env, cwd=str(ROOT), check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-c", READ_ONLY_HOME, str(tmp_path), str(root)], env=env,
                            cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"read {len(clean)} 64" in result.stdout and f"read {len(clean)} 32" in result.stdout
    assert "could not note these face settings" in result.stdout
