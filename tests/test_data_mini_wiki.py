"""mini-wiki end to end: defects counted in the funnel, the cache, ground truth, determinism."""
import io
import json
import tarfile
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from course_utils import paths
from course_utils.data import (build_mini_wiki, crop_faces, load_face_cache, load_face_crop, random_identity,
                               read_imdb_wiki_metadata, render_ground_truth, render_photo)
from course_utils.data.crops import CMYK, GRAYSCALE, MISSING, OK, PLACEHOLDER, UNREADABLE
from course_utils.data.download import download_dataset
from course_utils.data.mini_wiki import IMAGE_DEFECTS, METADATA_DEFECTS

N_ENTRIES = 300


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A course home with a 300-photo mini-wiki and its default face cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("home")
        patch.setenv("FACE_AGING_HOME", str(folder))
        patch.setenv("FACE_AGING_DATASET", "mini-wiki")
        root = download_dataset("mini-wiki", progress=False, mini_wiki_entries=N_ENTRIES)
        faces = load_face_cache(progress=False, workers=2)
        yield {"folder": folder, "root": root, "faces": faces, "patch": patch,
               "sidecar": json.loads((root / "mini_wiki_identities.json").read_text())}


def test_layout_matches_the_real_dataset(home):
    root = home["root"]
    assert root == home["folder"] / "datasets" / "mini-wiki" / "wiki_crop"
    table = read_imdb_wiki_metadata(root / "wiki.mat")
    assert len(table) == N_ENTRIES
    assert table["full_path"].str.fullmatch(r"\d\d/\d+_[\d-]+_\d{4}\.jpg").all()
    assert (table["name"] == "").any() and table["gender"].isna().any()
    # photos are realistic sizes and the face box lies inside
    first = table.iloc[0]
    with Image.open(root / first["full_path"]) as img:
        assert 500 <= img.width <= 1000
        assert 0 <= first["face_x1"] < first["face_x2"] <= img.width


def test_every_defect_is_counted_in_the_funnel(home):
    entries = home["sidecar"]["entries"].values()
    defects = Counter(e["defect"] for e in entries if e["defect"])
    assert set(defects) == set(METADATA_DEFECTS + IMAGE_DEFECTS)
    assert 0.04 <= sum(defects.values()) / N_ENTRIES <= 0.06
    funnel = home["faces"].funnel.set_index("rule")
    assert funnel.loc["no face", "removed"] == defects["no_face"]
    assert funnel.loc["low face score", "removed"] == defects["low_score"]
    assert funnel.loc["second face", "removed"] == defects["second_face"]
    assert funnel.loc["age invalid or outside 0-100", "removed"] == (
        defects["age_negative"] + defects["age_over_100"] + defects["dob_invalid"])
    assert funnel.loc[MISSING, "removed"] == defects["missing"]
    assert funnel.loc[UNREADABLE, "removed"] == defects["truncated"]
    assert funnel.loc[PLACEHOLDER, "removed"] == defects["placeholder"]
    assert funnel.loc[GRAYSCALE, "converted"] == defects["grayscale"]
    assert funnel.loc[CMYK, "converted"] == defects["cmyk"]
    assert funnel.loc["unknown gender", "removed"] > 0
    assert funnel["remaining"].iloc[-1] == len(home["faces"])


def test_cache_contents(home):
    faces = home["faces"]
    assert faces.images.dtype == np.uint8 and faces.images.shape[1:] == (64, 64, 3)
    assert len(faces.table) == len(faces.images)
    for column in ("label", "age", "name", "identity", "full_path", "face_x1", "photo_taken", "gender"):
        assert column in faces.table
    assert faces.age_groups == ((20, 30), (40, 50))
    counts = faces.table["label"].value_counts()
    assert counts[0] > counts[1] > 0  # imbalanced like real wiki
    assert set(faces.table["image_outcome"]) == {OK, GRAYSCALE, CMYK}
    assert faces.images.reshape(len(faces), -1).std(axis=1).min() > 5  # no blank faces


def test_cache_is_reused_and_rebuilt_when_a_setting_changes(home):
    faces = home["faces"]
    stamp = (faces.path / "images.npy").stat().st_mtime_ns
    again = load_face_cache(progress=False)
    assert again.path == faces.path and (again.path / "images.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(again.images, faces.images)

    wider = load_face_cache(progress=False, margin=0.8, image_size=32)
    assert wider.path != faces.path and wider.images.shape[1:] == (32, 32, 3)
    other_groups = load_face_cache(progress=False, age_groups=[(18, 29), (30, 45), (46, 80)])
    assert other_groups.path != faces.path and set(other_groups.table["label"]) == {0, 1, 2}

    rebuilt = load_face_cache(progress=False, rebuild=True)
    assert rebuilt.path == faces.path and np.array_equal(rebuilt.images, faces.images)
    # no temporary folders are left behind
    assert not [p for p in paths.cache_dir("mini-wiki").iterdir() if p.name.startswith(".")]


def test_ground_truth_at_the_photo_age_equals_the_cached_face(home):
    faces = home["faces"]
    ok = faces.table.index[faces.table["image_outcome"] == OK][:5]
    for i in ok:
        path, age = faces.table.loc[i, "full_path"], faces.table.loc[i, "age"]
        assert np.array_equal(render_ground_truth(faces.dataset_root, path, age), faces.images[i])
        older = render_ground_truth(faces.dataset_root, path, age + 30)
        assert np.abs(older.astype(int) - faces.images[i]).mean() > 2  # the age visibly changed


def test_crop_order_does_not_depend_on_workers(home):
    faces = home["faces"]
    files = [faces.dataset_root / p for p in faces.table["full_path"][:40]]
    boxes = faces.table[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy()[:40]
    one, _ = crop_faces(files, boxes, workers=1, progress=False)
    two, _ = crop_faces(files, boxes, workers=2, chunk_size=7, progress=False)
    assert np.array_equal(one, two) and np.array_equal(one, faces.images[:40])


def test_bad_images_never_crash(tmp_path):
    photo, box = render_photo(random_identity(np.random.default_rng(1)), 30, 4)
    samples = {}
    for name, mode in (("rgb", "RGB"), ("gray", "L"), ("cmyk", "CMYK")):
        buffer = io.BytesIO()
        photo.convert(mode).save(buffer, "JPEG")
        samples[name] = buffer.getvalue()
    samples["truncated"] = samples["rgb"][: len(samples["rgb"]) // 3]
    samples["garbage"] = b"\x00not an image" * 50
    tiny = io.BytesIO()
    Image.new("RGB", (1, 1)).save(tiny, "JPEG")
    samples["placeholder"] = tiny.getvalue()
    for name, data in samples.items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
    expected = {"rgb": OK, "gray": GRAYSCALE, "cmyk": CMYK, "truncated": UNREADABLE,
                "garbage": UNREADABLE, "placeholder": PLACEHOLDER, "missing": MISSING}
    for name, outcome in expected.items():
        crop, got = load_face_crop(tmp_path / f"{name}.jpg", box)
        assert got == outcome, name
        assert (crop is None) == (outcome in (UNREADABLE, PLACEHOLDER, MISSING))
        if crop is not None:
            assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8


def test_builder_is_deterministic(tmp_path):
    first = build_mini_wiki(tmp_path / "a", n_entries=40, seed=7, workers=2, progress=False)
    second = build_mini_wiki(tmp_path / "b", n_entries=40, seed=7, workers=1, progress=False)
    other = build_mini_wiki(tmp_path / "c", n_entries=40, seed=8, workers=1, progress=False)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as a, tarfile.open(other) as c:
        mat_a = a.extractfile("wiki_crop/wiki.mat").read()
        mat_c = c.extractfile("wiki_crop/wiki.mat").read()
        jpgs = [m for m in a.getnames() if m.endswith(".jpg")][:3]
        assert len(jpgs) == 3 and all(len(a.extractfile(m).read()) > 1000 for m in jpgs)
    assert mat_a != mat_c
    assert not list((tmp_path / "a").glob(".*"))  # no temporary archive left


def test_builder_rejects_tiny_datasets(tmp_path):
    with pytest.raises(ValueError, match="n_entries"):
        build_mini_wiki(tmp_path, n_entries=5, progress=False)


class PlantedPayload:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_planted_in_the_cache_never_runs(home, tmp_path):
    import pickle

    folder = home["faces"].path
    marker = tmp_path / "payload-ran"
    assert not list(folder.glob("*.pkl"))  # the cache itself holds no pickles
    (folder / "table.pkl").write_bytes(pickle.dumps(PlantedPayload(marker)))
    again = load_face_cache(progress=False, workers=1)
    assert not marker.exists() and again.path == folder and len(again) == len(home["faces"])
    assert again.table.equals(home["faces"].table)
    # A cache folder holding only the planted pickle (an old or tampered format) is rebuilt, not unpickled.
    (folder / "table.json").unlink()
    rebuilt = load_face_cache(progress=False, workers=1)
    assert not marker.exists() and (folder / "table.json").exists()
    assert np.array_equal(rebuilt.images, home["faces"].images)


def test_a_mini_wiki_from_an_older_renderer_is_rebuilt(tmp_path, monkeypatch, capsys):
    """An archive, folder and face cache left by an older course must not keep serving the old faces."""
    from course_utils.data import mini_wiki

    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    monkeypatch.setenv("FACE_AGING_DATASET", "mini-wiki")
    current = mini_wiki.RENDERER_VERSION
    monkeypatch.setattr(mini_wiki, "RENDERER_VERSION", current - 1)  # "the older course"
    root = download_dataset("mini-wiki", progress=False, mini_wiki_entries=40)
    archive = root.parent / mini_wiki.ARCHIVE_NAME
    old_faces = load_face_cache(progress=False, workers=1)
    assert mini_wiki.renderer_version_of(root) == current - 1
    monkeypatch.setattr(mini_wiki, "RENDERER_VERSION", current)  # the learner updates the course

    assert "renderer version" in mini_wiki.stale_reason(root) and mini_wiki.stale_reason(archive)
    with pytest.raises(RuntimeError, match="renderer version"):
        render_ground_truth(root, old_faces.table["full_path"].iloc[0], 40)
    assert download_dataset("mini-wiki", progress=False, mini_wiki_entries=40) == root
    assert "out of date" in capsys.readouterr().out
    assert mini_wiki.renderer_version_of(root) == current and mini_wiki.stale_reason(root) is None
    assert mini_wiki.stale_reason(archive) is None
    faces = load_face_cache(progress=False, workers=1)
    assert faces.path != old_faces.path  # the cache of the old faces is not reused
    i = int(np.flatnonzero(faces.table["image_outcome"] == OK)[0])
    assert np.array_equal(render_ground_truth(root, faces.table["full_path"].iloc[i], faces.table["age"].iloc[i]),
                          faces.images[i])
    # A current mini-wiki is left alone.
    stamp = archive.stat().st_mtime_ns
    assert download_dataset("mini-wiki", progress=False, mini_wiki_entries=40) == root
    assert archive.stat().st_mtime_ns == stamp and "out of date" not in capsys.readouterr().out


def test_a_stale_archive_without_its_folder_is_rebuilt(tmp_path, monkeypatch):
    from course_utils.data import mini_wiki

    current = mini_wiki.RENDERER_VERSION
    monkeypatch.setattr(mini_wiki, "RENDERER_VERSION", current - 1)
    archive = build_mini_wiki(tmp_path / "mini-wiki", n_entries=40, seed=0, workers=1, progress=False)
    monkeypatch.setattr(mini_wiki, "RENDERER_VERSION", current)
    assert mini_wiki.stale_reason(archive)
    root = download_dataset("mini-wiki", root=tmp_path, progress=False, mini_wiki_entries=40)
    assert mini_wiki.renderer_version_of(root) == current and mini_wiki.stale_reason(archive) is None
    # An archive of the first mini-wiki, whose sidecar records no version, counts as version 1.
    assert mini_wiki.sidecar_renderer_version({"seed": 0}) == 1
