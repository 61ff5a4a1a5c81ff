"""The course defaults: the split by person, the presets table, and rebuilding a missing classifier."""
import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import course, presets
from course_utils.data import FaceCache
from course_utils.models import Generator
from course_utils.train_encoder import EncoderConfig
from course_utils.train_gan import GanConfig


def striped_faces(count=120) -> FaceCache:
    """Tiny faces whose label shows as a bright top band, ten photos per person."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    images = rng.integers(0, 100, (count, 64, 64, 3), dtype=np.uint8)
    images[labels == 1, :16] = 230
    table = pd.DataFrame({"label": labels, "name": [f"person {i // 10}" for i in range(count)],
                          "full_path": [f"{i % 100:02d}/{i}.jpg" for i in range(count)],
                          "age": np.where(labels == 1, 45, 25)})
    table["identity"] = table["name"]
    return FaceCache(images=images, table=table, funnel=pd.DataFrame(), age_groups=((20, 30), (40, 50)))


def test_split_keeps_each_person_on_one_side():
    faces = striped_faces()
    train, val = faces.split()
    assert len(train) + len(val) == len(faces) and len(val) > 0
    names = faces.table["name"].to_numpy()
    assert not set(names[train]) & set(names[val])


def test_classifier_is_the_same_whatever_ran_before(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")
    faces = striped_faces()
    torch.manual_seed(1)
    first, _ = course.train_age_classifier(faces, progress=False)
    torch.manual_seed(2)  # a chapter that ran other random work first
    second, _ = course.train_age_classifier(faces, progress=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_ensure_classifier_rebuilds_when_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")
    classifier = course.ensure_classifier(striped_faces(), progress=False)
    assert "missing: rebuilding classifier" in capsys.readouterr().out
    assert (tmp_path / "runs" / "mini-wiki" / "classifier.pt").exists()
    assert not classifier.training
    course.ensure_classifier(striped_faces(), progress=False)  # now found: no second rebuild
    assert "rebuilding" not in capsys.readouterr().out


@pytest.fixture
def course_sizes(monkeypatch):
    monkeypatch.delenv("FACE_AGING_RUN_SIZE", raising=False)
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)


def test_gan_defaults_depend_on_the_device(course_sizes):
    assert course.gan_config(device=torch.device("cpu")).steps == GanConfig().steps
    gpu = presets.PRESETS["course-gpu"]
    assert course.gan_config(device=torch.device("cuda")).steps == gpu.gan_steps > GanConfig().steps
    assert course.gan_config(device=torch.device("cuda"), steps=7).steps == 7
    with pytest.raises(ValueError):
        course.gan_config(device=torch.device("cpu"), steps=0)


def test_the_config_dataclasses_take_their_defaults_from_the_presets_table(course_sizes, monkeypatch):
    """One source: the course-cpu row is the dataclass defaults; change the row and the defaults follow."""
    row = presets.PRESETS["course-cpu"]
    assert course.current_preset("mini-wiki", torch.device("cpu")) is row is presets.DEFAULT
    gan, encoder = GanConfig(), EncoderConfig()
    assert (gan.steps, gan.width, gan.batch_size) == (row.gan_steps, row.gan_width, row.gan_batch)
    assert (encoder.steps, encoder.width, encoder.hidden, encoder.batch_size, encoder.lr, encoder.eval_pairs) == (
        row.encoder_steps, row.encoder_width, row.encoder_hidden, row.encoder_batch, row.encoder_lr,
        row.encoder_eval_pairs)


def test_every_preset_says_what_it_is_for():
    assert {"course-cpu", "course-gpu", "real-cpu", "real-gpu", "axis-cpu", "axis-gpu", "tiny"} == set(presets.PRESETS)
    for name, row in presets.PRESETS.items():
        assert len(row.purpose) > 20, name


def test_step_counts_are_written_only_in_the_presets_table():
    """No module of the package writes a run length outside presets.py (the checks read the table)."""
    import re
    from pathlib import Path

    package = Path(course.__file__).parent
    pattern = re.compile(r"\b(steps|gan_steps|encoder_steps|epochs)[\"']?\s*[:=]\s*(int\s*=\s*)?[1-9]\d{2,}")
    offenders = [f"{path.name}:{number}: {line.strip()}" for path in package.rglob("*.py") if path.name != "presets.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_real_data_sizes_the_run_by_device_and_warns_on_a_cpu(course_sizes, monkeypatch, capsys):
    monkeypatch.setenv("FACE_AGING_DATASET", "wiki")
    faces = striped_faces()
    faces.dataset = "wiki"
    cpu = course.gan_config(faces, device=torch.device("cpu"))
    assert cpu.steps == presets.PRESETS["real-cpu"].gan_steps > GanConfig().steps
    warning = capsys.readouterr().out
    assert "on a CPU" in warning and "min" in warning and "estimate" in warning
    gpu = course.gan_config(faces, device=torch.device("cuda"))
    assert (gpu.steps, gpu.width) == (presets.PRESETS["real-gpu"].gan_steps, 64)
    assert capsys.readouterr().out == ""  # no CPU warning on a GPU
    encoder = course.encoder_config(Generator(100, 2, 64, 8), torch.device("cpu"))
    assert encoder.steps == presets.PRESETS["real-cpu"].encoder_steps and "encoder" in capsys.readouterr().out
    faces.dataset = "mini-wiki"
    course.gan_config(faces, device=torch.device("cpu"))
    assert capsys.readouterr().out == ""  # the course run needs no warning


def test_tiny_run_size_overrides_data_and_device(course_sizes, monkeypatch):
    monkeypatch.setenv("FACE_AGING_RUN_SIZE", "tiny")
    monkeypatch.setenv("FACE_AGING_DATASET", "wiki")
    tiny = presets.PRESETS["tiny"]
    for device in ("cpu", "cuda"):
        assert course.gan_config(device=torch.device(device)).steps == tiny.gan_steps
    assert course.current_preset().classifier_epochs == tiny.classifier_epochs


def test_gan_config_takes_groups_and_size_from_the_faces():
    faces = striped_faces()
    config = course.gan_config(faces, torch.device("cpu"))
    assert (config.n_classes, config.image_size) == (len(faces.age_groups), faces.images.shape[1])


def test_tuning_faces_are_the_held_out_faces_chapter5_does_not_report():
    val_idx = np.arange(1000, 1400)
    reported, tuning = course.reported_faces(val_idx), course.tuning_faces(val_idx)
    assert len(reported) == course.REPORTED_FACES and len(tuning) == len(val_idx) - course.REPORTED_FACES
    assert not set(reported) & set(tuning)
    assert sorted(set(reported) | set(tuning)) == list(val_idx)


def test_chapter5_ages_to_the_oldest_group_and_the_oldest_to_the_youngest():
    assert course.aging_targets([0, 1, 1, 0], 2).tolist() == [1, 0, 0, 1]  # two groups: the other one
    assert course.aging_targets([0, 1, 2], 3).tolist() == [2, 2, 0]
    assert int(course.aging_targets(4, 5)) == 0
