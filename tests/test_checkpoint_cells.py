"""Each chapter's checkpoint cell fails on a deliberately broken model, and passes on a working one.

The cell is taken from the committed notebook and executed with stand-ins for the
variables the chapter computed before it: an untrained generator (chapter 2), a
generator that ignores its age label (chapters 3 and 5) and an encoder that
outputs zeros (chapter 4). A working stand-in beside each shows the asserts are
not simply always failing.
"""
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils import course, paths
from course_utils.classifier import predict_groups
from course_utils.conditioning_check import conditioning_report
from course_utils.metrics import mean_pairwise_distance
from course_utils.models import Generator
from course_utils.tensors import one_hot, to_model_range
from course_utils.train_encoder import unexplained_variance

from conftest import make_face_cache

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
GROUPS = ((20, 30), (40, 50))


def checkpoint_cell(notebook: str) -> str:
    """The first code cell after the markdown cell that opens the chapter's checkpoint."""
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Checkpoint" in c.source)
    cell = next(c for c in cells[start + 1:] if c.cell_type == "code")
    assert "assert" in cell.source
    return cell.source


def run_checkpoint(notebook: str, **variables) -> None:
    namespace = {"np": np, "pd": pd, "torch": torch, "paths": paths, "course": course, "one_hot": one_hot,
                 "to_model_range": to_model_range, "mean_pairwise_distance": mean_pairwise_distance}
    namespace.update(variables)
    exec(compile(checkpoint_cell(notebook), notebook, "exec"), namespace)


def expect_checkpoint(notebook: str, failure: str | None, **variables) -> None:
    """Run the checkpoint cell: it must pass when ``failure`` is None, else fail with that message (a regex)."""
    if failure is None:
        run_checkpoint(notebook, **variables)
    else:
        with pytest.raises(AssertionError, match=failure):
            run_checkpoint(notebook, **variables)


@pytest.fixture
def home_with(tmp_path, monkeypatch):
    """A course home whose run folder holds empty stand-ins for the named checkpoints."""
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)
    monkeypatch.delenv("FACE_AGING_RUN_SIZE", raising=False)

    def make(*names):
        paths.run_dir().mkdir(parents=True, exist_ok=True)
        for name in names:
            (paths.run_dir() / name).touch()
    return make


class BandGenerator(nn.Module):
    """A toy generator whose 'age' is the brightness of the top band; ``obeys=False`` ignores the label.

    ``personal=True``: how much the band brightens with age differs from person to person (it
    depends on z), so the average change between the groups is not everyone's change.
    """

    def __init__(self, obeys: bool = True, personal: bool = False):
        super().__init__()
        self.z_dim, self.n_classes, self.obeys, self.personal = 8, 2, obeys, personal
        torch.manual_seed(7)  # the same toy world in every instance
        self.mix = nn.Linear(8, 3 * 64 * 64)

    def forward(self, z, condition):
        images = torch.tanh(self.mix(z)).view(-1, 3, 64, 64) * 0.3
        band = condition[:, 1] if self.obeys else torch.full_like(condition[:, 1], 0.5)
        amplitude = 0.2 + 1.6 * torch.sigmoid(2 * z[:, 0]) if self.personal else torch.ones_like(band)
        images[:, :, :16] = (amplitude * (band - 0.5)).view(-1, 1, 1, 1)
        return images


class BandJudge(nn.Module):
    """A classifier that reads the top band: bright means the older group."""
    n_classes = 2

    def forward(self, images):
        brightness = images[:, :, :16].mean(dim=(1, 2, 3))
        return torch.stack([-brightness, brightness], dim=1) * 10


class ReplayGenerator(nn.Module):
    """A 'perfect' generator for chapter 2: it returns real training faces."""

    def __init__(self, images):
        super().__init__()
        self.z_dim, self.n_classes, self.images = 100, 2, to_model_range(images)

    def forward(self, z, condition):
        return self.images[torch.randint(len(self.images), (len(z),))]


def gan_checkpoint_variables(short, long, faces, val):
    real = to_model_range(faces.images[val])
    with torch.no_grad():
        z = torch.randn(512, 100, generator=torch.Generator().manual_seed(2))
        asked = one_hot(torch.arange(512) % 2, 2)
        short_faces, long_faces = short(z, asked), long(z, asked)
    history = pd.DataFrame({"loss_d": [0.7, 0.6], "loss_g": [2.0, 2.5]})
    return dict(history=history, short_faces=short_faces, long_faces=long_faces, real=real)


class Speckled(nn.Module):
    """Real faces with a pixel checkerboard on top: an undertrained generator's grain."""

    def __init__(self, images):
        super().__init__()
        self.replay = ReplayGenerator(images)

    def forward(self, z, condition):
        faces = self.replay(z, condition)
        rows, columns = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        return (faces + 0.6 * ((rows + columns) % 2 * 2 - 1)).clamp(-1, 1)


@pytest.mark.parametrize("case", ["untrained short run", "speckled course model", "working"])
def test_chapter2_checkpoint(case, home_with):
    home_with("gan.pt")
    faces = make_face_cache(GROUPS, count=1200, size=64)
    train, val = np.arange(0, 600), np.arange(600, 1200)
    torch.manual_seed(0)
    working = ReplayGenerator(faces.images[train])
    short = Generator(100, 2, 64, width=8).eval() if case == "untrained short run" else working
    long = Speckled(faces.images[train]) if case == "speckled course model" else working
    variables = gan_checkpoint_variables(short, long, faces, val)
    failure = {"untrained short run": "mode collapse|mean generated face", "speckled course model": "draws speckle"}
    expect_checkpoint("02_cgan.ipynb", failure.get(case), **variables)


CNN_AND_LOGISTIC = pd.DataFrame({"balanced_accuracy": [0.95, 0.85]}, index=["CNN AgeClassifier", "logistic baseline"])


@pytest.mark.parametrize("broken", [True, False], ids=["label ignored", "label obeyed"])
def test_chapter3_checkpoint(broken, home_with):
    report = conditioning_report(BandGenerator(obeys=not broken), BandJudge(), n_per_class=100, seed=0)
    for from_course in (False, True):
        variables = dict(report=report, scores=CNN_AND_LOGISTIC, models=SimpleNamespace(from_course=from_course))
        if broken:
            with pytest.raises(AssertionError):
                run_checkpoint("03_conditioning.ipynb", **variables)
        else:
            run_checkpoint("03_conditioning.ipynb", **variables)


def test_chapter3_checkpoint_holds_the_course_model_to_its_targets(home_with):
    """A report that beats chance but misses the course model's targets passes for your own model only."""
    report = {"accuracy": 0.85, "flip_rate": 0.7, "chance": 0.5}
    run_checkpoint("03_conditioning.ipynb", report=report, scores=CNN_AND_LOGISTIC,
                   models=SimpleNamespace(from_course=False))
    with pytest.raises(AssertionError, match="obey its age label"):
        run_checkpoint("03_conditioning.ipynb", report=report, scores=CNN_AND_LOGISTIC,
                       models=SimpleNamespace(from_course=True))


def test_chapter3_checkpoint_refuses_a_saturated_age_task(home_with):
    """The old renderer's figures (CNN 0.997, logistic 0.967): a task too easy to measure aging with."""
    report = conditioning_report(BandGenerator(), BandJudge(), n_per_class=100, seed=0)
    scores = pd.DataFrame({"balanced_accuracy": [0.997, 0.967]}, index=["CNN AgeClassifier", "logistic baseline"])
    with pytest.raises(AssertionError, match="saturated"):
        run_checkpoint("03_conditioning.ipynb", report=report, scores=scores, models=SimpleNamespace(from_course=False))


class ZeroEncoder(nn.Module):
    def forward(self, images):
        return torch.zeros(len(images), 8)


class OracleEncoder(nn.Module):
    """Reads z back from a generator that writes it into its first pixels."""

    def forward(self, images):
        return images.flatten(1)[:, :8] * 4


class WritesZ(nn.Module):
    z_dim, n_classes = 8, 2

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.25))  # a parameter tells the course's code its device

    def forward(self, z, condition):
        images = torch.zeros(len(z), 3, 64, 64)
        images.view(len(z), -1)[:, :8] = z * self.scale
        return images


@pytest.mark.parametrize("broken", [True, False], ids=["encoder outputs zeros", "encoder inverts G"])
def test_chapter4_checkpoint(broken, home_with):
    home_with("encoder.pt")
    encoder = ZeroEncoder() if broken else OracleEncoder()
    result = SimpleNamespace(unexplained_variance=unexplained_variance(encoder, WritesZ(), n=256))
    scores = pd.DataFrame({"PSNR (dB)": [19.0, 15.0], "SSIM": [0.4, 0.1]},
                          index=["encoder → generator", "mean face (baseline)"])
    variables = dict(result=result, scores=scores, models=SimpleNamespace(from_course=False),
                     long_unexplained=0.3, run_dir=paths.run_dir())
    if broken:
        with pytest.raises(AssertionError, match="hardly better than its mean"):
            run_checkpoint("04_encoder.ipynb", **variables)
    else:
        run_checkpoint("04_encoder.ipynb", **variables)
        course_run = {**variables, "models": SimpleNamespace(from_course=True),
                      "result": SimpleNamespace(unexplained_variance=0.8)}  # a short run against the long one
        run_checkpoint("04_encoder.ipynb", **course_run)
        with pytest.raises(AssertionError, match="has not learnt to invert the generator"):
            run_checkpoint("04_encoder.ipynb", **{**course_run, "long_unexplained": 0.95})


def ground_truth_table(model: str) -> tuple[pd.DataFrame, float]:
    """Chapter 5's ablation table, built as the chapter builds it, in a toy world with known answers:
    each person's band brightens by their own amount with age -> (table, share judged in the target group)."""
    from course_utils.age_change import clean_change, population_change

    world = BandGenerator(personal=True)
    generator = {"label ignored": BandGenerator(obeys=False, personal=True)}.get(model, world)
    torch.manual_seed(0)
    z, labels = torch.randn(64, 8), torch.arange(64) % 2
    source, target = one_hot(labels, 2), one_hot(1 - labels, 2)
    with torch.no_grad():
        photos = world(z, source) + 0.05 * torch.randn(64, 3, 64, 64)
        truth = world(z, target)
        from_refined, redrawn = generator(z, source), generator(z, target)
        if model == "noisy change":  # a change drowned in pixel noise, as an undertrained G draws it
            redrawn = redrawn + 0.3 * torch.randn(redrawn.shape, generator=torch.Generator().manual_seed(1))
        everyone = world(torch.randn(512, 8), one_hot(torch.arange(512) % 2, 2))
    means = torch.stack([everyone[0::2].mean(0), everyone[1::2].mean(0)])
    raw = redrawn - from_refined
    outputs = {
        "unchanged input (do nothing)": photos,
        "average only: input + mean group difference": photos + population_change(means, source, target),
        "model only: input + raw change": photos + raw,
        "edit (default): blended, guided filter": photos + clean_change(raw, source, target, means, guide=photos),
        "redraw: G(refined z, target)": redrawn,
        "reconstruction at the source age": from_refined,
    }
    table = pd.DataFrame({"RMS distance to truth": [(out.clamp(-1, 1) - truth).pow(2).flatten(1).mean(1).sqrt().mean().item()
                                                    for out in outputs.values()]}, index=list(outputs))
    in_target = float((predict_groups(BandJudge(), redrawn) == 1 - labels).double().mean())
    return table, in_target


@pytest.mark.parametrize("model", ["label ignored", "noisy change", "working"])
def test_chapter5_checkpoint(model, home_with):
    home_with()
    table, in_target = ground_truth_table(model)
    variables = dict(gain=0.5, in_target=in_target, ground_truth_table=table, models=SimpleNamespace(from_course=True))
    failure = {"label ignored": "target age|towards the true|closer to the truth",
               "noisy change": "own change should be as good as the average"}
    expect_checkpoint("05_aging.ipynb", failure.get(model), **variables)
    if model == "noisy change":  # the learner's own models are not held to the course models' bar
        run_checkpoint("05_aging.ipynb", **{**variables, "models": SimpleNamespace(from_course=False)})


def test_chapter5_checkpoint_asks_the_course_models_for_a_ten_percent_margin(home_with):
    home_with()
    table, in_target = ground_truth_table("working")
    average_only = table.loc["average only: input + mean group difference", "RMS distance to truth"]
    table.loc["edit (default): blended, guided filter", "RMS distance to truth"] = 0.95 * average_only
    table.loc["model only: input + raw change", "RMS distance to truth"] = 0.99 * average_only
    with pytest.raises(AssertionError, match="at least 10% closer"):
        run_checkpoint("05_aging.ipynb", gain=0.5, in_target=in_target, ground_truth_table=table,
                       models=SimpleNamespace(from_course=True))


class LevelGenerator(nn.Module):
    """A toy age-axis generator: its face is as bright as the thermometer code says; ``obeys=False`` ignores it."""

    def __init__(self, obeys: bool = True):
        super().__init__()
        self.z_dim, self.n_classes, self.image_size, self.obeys = 4, 7, 32, obeys
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, z, condition):
        level = condition.sum(1) / 7 - 0.5 if self.obeys else torch.zeros(len(z))
        return (level + 0 * z[:, 0] + self.unused)[:, None, None, None].expand(-1, 3, 32, 32)


class ZeroLatent(nn.Module):
    """An encoder that answers z = 0 (4-dimensional, for LevelGenerator)."""

    def forward(self, images):
        return torch.zeros(len(images), 4)


@pytest.mark.parametrize("broken", [True, False], ids=["age ignored", "age obeyed"])
def test_chapter6_checkpoint(broken):
    """The response curve and the ground-truth table come from the chapter's own functions, in a toy world
    where age is brightness and people differ by a fixed pattern."""
    from course_utils import age_axis, conditions
    from course_utils.age_axis import AgeJudge

    class LevelJudge(AgeJudge):
        def forward(self, images):
            return 15 + (images.mean((1, 2, 3)) + 0.5) * 70

    judge = LevelJudge(32, 4)
    condition_of = conditions.scheme_condition("thermometer")
    pattern = np.random.default_rng(0).integers(-20, 21, (3, 1, 32, 32, 3))
    levels = np.array([(condition_of(a).sum().item() / 7 - 0.5 + 1) * 127.5 for a in (20, 30, 40, 50, 60, 70)])
    images = np.clip(levels[None, :, None, None, None] + pattern, 0, 255).astype(np.uint8)
    people = age_axis.AxisPeople(np.arange(3), (20, 30, 40, 50, 60, 70), images)
    means = {a: torch.full((3, 32, 32), float(levels[k] / 127.5 - 1)) for k, a in enumerate(people.ages)}

    def measured(generator):
        fit = pd.Series(age_axis.curve_fit(age_axis.response_curve(generator, judge, condition_of, n_noise=4)))
        pairs = age_axis.ground_truth_along_axis(generator, ZeroLatent(), people, condition_of, means,
                                                 refine_steps=0)
        methods = [c for c in pairs.columns if c not in ("person", "from", "to", "gap", "direction")]
        return fit, pairs.groupby("gap")[methods].mean()

    fit, by_gap = measured(LevelGenerator(obeys=not broken))
    visible = pd.DataFrame({"raw edit: judged change (years)": [15.0, -14.0]}, index=["+20 years", "-20 years"])
    variables = dict(judge_scores={"judge_mae": 3.0, "mean_baseline_mae": 15.0}, better="thermometer",
                     fits=pd.DataFrame([fit], index=["thermometer"]), by_gap=by_gap, visible=visible,
                     models=SimpleNamespace(from_course=True))
    if broken:
        with pytest.raises(AssertionError, match="follow the requested age"):
            run_checkpoint("06_age_axis.ipynb", **variables)
        # Even with a good response curve, the ground truth sees a generator that ignores the age: the
        # cleaned edit still gains from the average change, the generator's own change does not.
        good_fit, _ = measured(LevelGenerator(obeys=True))
        assert (by_gap[age_axis.CLEANED_EDIT] < by_gap["unchanged input"]).all()
        with pytest.raises(AssertionError, match="own age change must beat doing nothing"):
            run_checkpoint("06_age_axis.ipynb", **{**variables, "fits": pd.DataFrame([good_fit], index=["thermometer"])})
    else:
        run_checkpoint("06_age_axis.ipynb", **variables)
        faint = pd.DataFrame({"raw edit: judged change (years)": [8.0, -14.0]}, index=["+20 years", "-20 years"])
        with pytest.raises(AssertionError, match="should look older"):
            run_checkpoint("06_age_axis.ipynb", **{**variables, "visible": faint})
        run_checkpoint("06_age_axis.ipynb", **{**variables, "visible": faint, "models": SimpleNamespace(from_course=False)})
    with pytest.raises(AssertionError, match="clearly beat the mean"):
        run_checkpoint("06_age_axis.ipynb", **{**variables, "judge_scores": {"judge_mae": 14.0,
                                                                             "mean_baseline_mae": 15.0}})
