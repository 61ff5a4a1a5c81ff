"""Conditioning measurements on stand-in generators whose use of the label is known."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.classifier import AgeClassifier
from course_utils.conditioning_check import (
    conditioning_report,
    conditioning_table,
    label_difference_map,
    label_interpolation_strip,
    render_shared_noise,
)

SIZE, BAND = 16, 4


class BandGenerator(nn.Module):
    """Background from z; the top band goes from black (group 0) to white (last group).

    The band value is linear in the condition's group position, so soft
    conditions give in-between greys. With ``ignore_condition`` the band
    follows the sign of z[:, 0] instead: a generator that ignores its label.
    """

    def __init__(self, n_classes=2, z_dim=8, ignore_condition=False):
        super().__init__()
        self.n_classes, self.z_dim, self.ignore_condition = n_classes, z_dim, ignore_condition
        self.modes_seen = []

    def forward(self, z, condition):
        self.modes_seen.append((self.training, torch.is_grad_enabled()))
        background = torch.tanh(z[:, 1:4])[:, :, None, None].expand(-1, 3, SIZE, SIZE).clone()
        if self.ignore_condition:
            band = torch.sign(z[:, 0])
        else:
            position = condition @ torch.arange(self.n_classes, dtype=torch.float32)
            band = -1 + 2 * position / (self.n_classes - 1)
        background[:, :, :BAND] = band[:, None, None, None]
        return background


class BandClassifier(nn.Module):
    """Perfectly separates the stand-in's groups by the top band's brightness."""

    def __init__(self, n_classes=2):
        super().__init__()
        self.n_classes = n_classes

    def forward(self, images):
        brightness = images[:, :, :BAND].mean(dim=(1, 2, 3))
        centres = torch.linspace(-1, 1, self.n_classes)
        return -(brightness[:, None] - centres) ** 2


def test_render_shared_noise_uses_the_same_z_for_every_label():
    renders = render_shared_noise(BandGenerator(), n=10, seed=3, batch_size=4)
    assert renders.shape == (2, 10, 3, SIZE, SIZE)
    assert torch.equal(renders[0, :, :, BAND:], renders[1, :, :, BAND:])  # same z below the band
    assert torch.all(renders[0, :, :, :BAND] == -1) and torch.all(renders[1, :, :, :BAND] == 1)
    assert torch.equal(renders, render_shared_noise(BandGenerator(), n=10, seed=3, batch_size=10))
    assert not torch.equal(renders, render_shared_noise(BandGenerator(), n=10, seed=4))


def test_generator_runs_in_eval_mode_without_grad_and_mode_is_restored():
    generator = BandGenerator().train()
    render_shared_noise(generator, n=4, seed=0)
    assert generator.modes_seen and set(generator.modes_seen) == {(False, False)}
    assert generator.training


def test_label_difference_map_shows_where_the_label_acts():
    heatmap = label_difference_map(BandGenerator(), n=32, seed=0, batch_size=10)
    assert isinstance(heatmap, np.ndarray) and heatmap.shape == (SIZE, SIZE)
    np.testing.assert_allclose(heatmap[:BAND], 2.0)
    np.testing.assert_allclose(heatmap[BAND:], 0.0)
    # Three groups: averaged over consecutive steps (each moves the band by 1), not first vs last (2).
    np.testing.assert_allclose(label_difference_map(BandGenerator(n_classes=3), n=8)[:BAND], 1.0)
    assert np.all(label_difference_map(BandGenerator(ignore_condition=True), n=8) == 0)


def test_report_of_a_working_generator_and_a_perfect_classifier():
    report = conditioning_report(BandGenerator(), BandClassifier(), n_per_class=50, seed=0)
    assert report["group_accuracy"] == [1.0, 1.0]
    assert report["accuracy"] == 1.0 and report["flip_rate"] == 1.0
    assert report["chance"] == 0.5 and report["n_per_class"] == 50
    assert report["confusion"] == [[50, 0], [0, 50]]
    table = conditioning_table(report, ["young", "old"])
    assert table.loc["old", "predicted old"] == 50
    assert table["conditioning accuracy"].tolist() == [1.0, 1.0]


def test_report_of_a_generator_that_ignores_its_label():
    report = conditioning_report(BandGenerator(ignore_condition=True), BandClassifier(),
                                 n_per_class=200, seed=0)
    # Both renders of a z look alike, so exactly one label per z is "right" and none flips.
    assert report["flip_rate"] == 0.0
    assert report["accuracy"] == pytest.approx(0.5)
    assert 0.35 < report["group_accuracy"][0] < 0.65


def test_report_with_more_groups_flips_first_against_last():
    report = conditioning_report(BandGenerator(n_classes=3), BandClassifier(3), n_per_class=20)
    assert report["accuracy"] == 1.0 and report["flip_rate"] == 1.0
    assert report["chance"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="classifier knows 2 groups"):
        conditioning_report(BandGenerator(n_classes=3), BandClassifier(2), n_per_class=4)


def test_report_is_deterministic_by_seed():
    generator = BandGenerator(ignore_condition=True)
    first = conditioning_report(generator, BandClassifier(), n_per_class=64, seed=5, batch_size=16)
    again = conditioning_report(generator, BandClassifier(), n_per_class=64, seed=5, batch_size=64)
    other = conditioning_report(generator, BandClassifier(), n_per_class=64, seed=6)
    assert first == again and first["confusion"] != other["confusion"]


def test_interpolation_strip_moves_smoothly_from_first_to_last_group():
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    strip = label_interpolation_strip(BandGenerator(n_classes=3), z, steps=5)
    assert strip.shape == (15, 3, SIZE, SIZE)
    bands = strip[:, 0, 0, 0].reshape(3, 5)
    torch.testing.assert_close(bands, torch.linspace(-1, 1, 5).expand(3, 5))
    rows = strip[:, :, BAND:].reshape(3, 5, -1)
    assert torch.equal(rows, rows[:, :1].expand_as(rows))  # one identity per row of the grid
    with pytest.raises(ValueError, match=r"shape|z has"):
        label_interpolation_strip(BandGenerator(), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="steps"):
        label_interpolation_strip(BandGenerator(), z, steps=1)


def test_works_with_the_course_generator():
    models = pytest.importorskip("course_utils.models")
    torch.manual_seed(0)
    generator = models.Generator(z_dim=16, n_classes=2, image_size=64, width=8)
    renders = render_shared_noise(generator, n=3, seed=0)
    assert renders.shape == (2, 3, 3, 64, 64)
    assert label_difference_map(generator, n=4).shape == (64, 64)
    strip = label_interpolation_strip(generator, torch.randn(2, 16), steps=4)
    assert strip.shape == (8, 3, 64, 64)
    classifier = AgeClassifier(n_classes=2, image_size=64, width=4)
    report = conditioning_report(generator, classifier, n_per_class=6, z_dim=16)
    assert sum(map(sum, report["confusion"])) == 12 and 0 <= report["flip_rate"] <= 1
