"""Chapter 6's age axis: condition schemes, the judge, batches of condition vectors, the side cache."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import age_axis, course, paths
from course_utils.age_axis import (AgeJudge, curve_fit, ground_truth_along_axis, judge_ages, mean_faces,
                                   response_curve, train_age_judge)
from course_utils.conditions import (SIX_GROUPS, THERMOMETER_THRESHOLDS, condition_for_ages, condition_size,
                                     random_conditions, scheme_condition)
from course_utils.aging import age_face_in_years
from course_utils.models import Encoder, Generator
from course_utils.train_encoder import EncoderConfig, generated_pairs, train_encoder
from course_utils.train_gan import FaceBatches, GanConfig, fixed_sample_inputs, load_generator, train_gan


def test_six_groups_are_age_cgans_one_hots():
    conditions = condition_for_ages([0, 18, 19, 29.9, 30, 45, 59, 60, 100], "six-groups")
    assert conditions.shape == (9, 6) and condition_size("six-groups") == 6
    assert conditions.argmax(1).tolist() == [0, 0, 1, 1, 2, 3, 4, 5, 5]
    assert torch.equal(conditions.sum(1), torch.ones(9))
    with pytest.raises(ValueError, match="outside"):
        condition_for_ages([101], "six-groups")


def test_thermometer_is_ordinal_and_continuous():
    ages = np.arange(10, 90.5, 0.5)
    code = condition_for_ages(ages, "thermometer")
    assert code.shape == (len(ages), len(THERMOMETER_THRESHOLDS))
    assert torch.all(code[:, :-1] >= code[:, 1:])  # ones first: a thermometer
    assert torch.all(code[1:].sum(1) >= code[:-1].sum(1))  # older never has fewer ones
    assert torch.allclose(code.sum(1), torch.as_tensor((ages - 15) / 10, dtype=torch.float32).clamp(0, 7))
    assert torch.equal(condition_for_ages([47.5], "thermometer")[0], torch.tensor([1, 1, 1, .25, 0, 0, 0]))


def test_groups_scheme_uses_the_caches_groups_and_unknown_schemes_fail():
    assert condition_for_ages([25, 45], "groups", [(20, 30), (40, 50)]).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="age_groups"):
        condition_for_ages([25], "groups")
    with pytest.raises(ValueError, match="not one of"):
        condition_for_ages([25], "decades")
    with pytest.raises(ValueError, match="dimensions"):
        GanConfig(condition="thermometer", n_classes=2)


def test_random_conditions_keep_the_group_draws_of_the_two_group_course():
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (16,), generator=a)
    assert torch.equal(random_conditions("groups", 2, 16, b, "cpu"), torch.nn.functional.one_hot(labels, 2).float())
    ages = random_conditions("thermometer", 7, 500, torch.Generator().manual_seed(0), "cpu").sum(1) * 10 + 15
    assert 15 <= ages.min() < 20 and 75 < ages.max() <= 80


def test_face_batches_take_condition_vectors_and_keep_the_label_path():
    images = torch.randint(0, 256, (24, 8, 8, 3), dtype=torch.uint8)
    labels = np.arange(24) % 2
    vectors = condition_for_ages(np.linspace(15, 80, 24), "thermometer").numpy()
    by_label = FaceBatches(images, labels, 2, 5, seed=1)
    by_vector = FaceBatches(images, vectors, 7, 5, seed=1)
    by_one_hot = FaceBatches(images, np.eye(2, dtype=np.float32)[labels], 2, 5, seed=1)
    for step in range(7):  # across an epoch boundary
        real, condition, z = by_label.next(step)
        real_v, condition_v, z_v = by_vector.next(step)
        _, condition_h, _ = by_one_hot.next(step)
        assert torch.equal(real, real_v) and torch.equal(z, z_v)  # the same stream of faces and noise
        assert torch.equal(condition, condition_h)
        indices = by_vector.shard[(by_vector.position - 1) * 5:by_vector.position * 5]
        assert torch.equal(condition_v, torch.as_tensor(vectors)[indices])
    assert by_vector.state_dict().keys() == by_label.state_dict().keys()
    with pytest.raises(ValueError, match="condition vectors"):
        FaceBatches(images, vectors, 6, 5)


def test_training_with_a_scheme_records_it_and_resumes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    conditions = condition_for_ages(np.linspace(15, 80, 40), "thermometer").numpy()
    config = GanConfig(z_dim=8, n_classes=7, image_size=32, width=4, batch_size=8, steps=2, log_every=1,
                       sample_every=2, checkpoint_every=1, condition="thermometer", n_sample_noise=2)
    result = train_gan(images, conditions, config, tmp_path, progress=False)
    assert result.generator.condition_scheme == "thermometer"
    generator = load_generator(tmp_path / "gan.pt")
    assert generator.condition_scheme == "thermometer" and generator.n_classes == 7
    z, condition = fixed_sample_inputs(config)
    assert z.shape == (14, 8) and torch.equal(condition[::2], condition_for_ages(range(20, 81, 10), "thermometer"))
    resumed = train_gan(images, conditions, GanConfig(**{**config.to_dict(), "steps": 3}), tmp_path,
                        resume=True, progress=False)
    assert resumed.steps == 3
    with pytest.raises(ValueError, match="condition"):  # a checkpoint of another scheme is not continued
        train_gan(images, np.eye(7, dtype=np.float32)[np.arange(40) % 7][:, :6],
                  GanConfig(**{**config.to_dict(), "condition": "six-groups", "n_classes": 6, "steps": 4}),
                  tmp_path, resume=True, progress=False)
    # The encoder samples the scheme's conditions.
    encoder = train_encoder(generator, EncoderConfig.for_generator(generator, steps=2, width=4, batch_size=8,
                                                                   eval_pairs=16), tmp_path, progress=False)
    assert torch.load(encoder.checkpoint_path, weights_only=True)["config"]["condition"] == "thermometer"
    _, _, sampled = generated_pairs(generator, 8, 7, 32, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert not torch.all((sampled == 0) | (sampled == 1))  # fractional thermometer bits, not one-hots


def test_the_side_cache_leaves_the_latest_settings_note(tmp_path, monkeypatch):
    """Building is stubbed out: only which settings the note keeps is tested here."""
    from course_utils.data import cache as cache_module
    from course_utils.data import FaceCache, latest_face_settings, load_face_cache

    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "home"))
    (tmp_path / "wiki.mat").write_bytes(b"metadata")
    monkeypatch.setattr(cache_module, "_build_cache", lambda folder, *args: folder.mkdir(parents=True))
    monkeypatch.setattr(cache_module, "_read_cache", lambda folder, dataset, root, settings: FaceCache(
        np.zeros((1, settings["image_size"], settings["image_size"], 3), np.uint8), pd.DataFrame({"age": [30]}),
        pd.DataFrame(), tuple(tuple(group) for group in settings["age_groups"])))
    load_face_cache("mini-wiki", image_size=32, age_groups=[(20, 30), (40, 50)], dataset_root=tmp_path)
    note = paths.cache_dir("mini-wiki") / "latest.json"
    before = note.read_text()
    faces = load_face_cache("mini-wiki", image_size=16, age_groups=SIX_GROUPS, dataset_root=tmp_path, remember=False)
    assert len(faces.age_groups) == 6 and faces.images.shape[1] == 16
    assert note.read_text() == before
    assert latest_face_settings("mini-wiki") == {"age_groups": ((20, 30), (40, 50)), "image_size": 32}
    load_face_cache("mini-wiki", image_size=16, age_groups=SIX_GROUPS, dataset_root=tmp_path)  # the default
    assert json.loads(note.read_text())["image_size"] == 16


def test_judge_shapes_training_and_resizing():
    judge = AgeJudge(32, width=4)
    assert judge(torch.zeros(3, 3, 32, 32)).shape == (3,)
    with pytest.raises(ValueError, match="images must have shape"):
        judge(torch.zeros(1, 3, 64, 64))
    assert judge_ages(judge, torch.zeros(5, 3, 64, 64)).shape == (5,)  # a 64-px generator's faces, shrunk
    rng = np.random.default_rng(0)
    ages = rng.uniform(15, 80, 128)
    # A learnable world: brightness is age.
    images = np.repeat(((ages - 15) / 65 * 255).astype(np.uint8)[:, None, None, None], 32 * 32 * 3, 1)
    images = images.reshape(128, 32, 32, 3)
    trained, history = train_age_judge(images, ages, epochs=15, batch_size=32, width=4, progress=False)
    assert list(history.columns) == ["epoch", "loss", "train_mae_years"] and len(history) == 15
    report = age_axis.judge_report(trained, images, ages, ages)
    assert report["judge_mae"] < report["mean_baseline_mae"] / 2


class _AgeIsBrightness(torch.nn.Module):
    """A generator whose faces are as bright as the thermometer code says (the judge reads brightness)."""
    z_dim, n_classes, image_size = 4, 7, 32

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, z, condition):
        level = condition.sum(1) / 7 * 2 - 1 + 0.0 * z[:, :1].squeeze(1)
        return (self.scale * level)[:, None, None, None].expand(-1, 3, 32, 32)


class _ReadBrightness(AgeJudge):
    def forward(self, images):
        return 15 + (images.mean((1, 2, 3)) + 1) / 2 * 70


def test_response_curve_and_fit_on_a_perfect_world():
    curve = response_curve(_AgeIsBrightness(), _ReadBrightness(32, 4), scheme_condition("thermometer"),
                           n_noise=4)
    assert list(curve["requested"]) == list(range(20, 71, 5))
    fit = curve_fit(curve)
    assert fit["pearson"] > 0.999 and abs(fit["slope"] - 1) < 1e-3


def test_ground_truth_table_has_both_directions_and_every_gap():
    rng = np.random.default_rng(0)
    people = age_axis.AxisPeople(np.arange(3), (20, 30, 40, 50, 60, 70),
                                 rng.integers(0, 256, (3, 6, 32, 32, 3), dtype=np.uint8))
    generator = Generator(4, 7, 32, width=4).eval()
    encoder = Encoder(4, 32, width=4, hidden=8).eval()
    means = mean_faces(rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), np.linspace(18, 72, 50), people.ages)
    table = ground_truth_along_axis(generator, encoder, people, scheme_condition("thermometer"), means,
                                    refine_steps=2)
    assert sorted(table["gap"].unique()) == [10, 20, 30, 40]
    assert len(table) == 3 * 2 * (5 + 4 + 3 + 2)
    assert set(table["direction"]) == {"older", "younger"}
    assert (table["unchanged input"] > 0).all()


def test_age_face_in_years_and_the_years_slider():
    from course_utils.widgets import YearsSliderApp

    torch.manual_seed(0)
    generator = Generator(4, 7, 32, width=4).eval()
    encoder = Encoder(4, 32, width=4, hidden=8).eval()
    faces = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    condition_of = scheme_condition("thermometer")
    result = age_face_in_years(faces[0], 62.5, generator, encoder, condition_of, source=30, refine_steps=2)
    assert result.aged.shape == (32, 32, 3) and result.source == 30.0
    app = YearsSliderApp(generator, encoder, faces, [30, 55], condition_of, age_range=(15, 80), refine_steps=2,
                         display_size=32)
    assert (app.slider.min, app.slider.max) == (15, 80)
    first = app.last_result
    app.slider.value = 72  # an untrained G's change is below a grey level, so compare the results, not pixels
    assert app.last_result is not first and app.last_result.target == 72 and "72 years" in app.caption.value
    assert not np.array_equal(app.last_result.change, first.change)
    assert "30 years" in app.status.value
    with pytest.raises(ValueError, match="slider's range"):
        YearsSliderApp(generator, encoder, faces, [10, 55], condition_of, age_range=(15, 80))
