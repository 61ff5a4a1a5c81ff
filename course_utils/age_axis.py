"""Chapter 6's measurements of an age axis: an age judge in years, response curves, ground truth.

The condition schemes themselves (one-hot groups, Age-cGAN's six groups, the
thermometer code) live in :mod:`course_utils.conditions`. Here:
:class:`AgeJudge`, a small CNN that regresses the age in years (the yardstick),
:func:`response_curve` (requested age -> judged age of generated faces) and
:func:`ground_truth_along_axis` (moving held-out mini-wiki people from age a
to age b, against their true renders).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .age_change import EditSettings, clean_change_with_average
from .aging import REFINE_STEPS, encode, refine_latent
from .checkpoints import load_checkpoint, save_checkpoint
from .data import render_ground_truth
from .tensors import to_model_range
from .training import evaluating, module_device

# ---------------------------------------------------------------- the age judge

class AgeJudge(nn.Module):
    """A small CNN that regresses the age in years: images (N, 3, S, S) in [-1, 1] -> ages (N,).

    The architecture of ``classifier.AgeClassifier`` (stride-2 conv blocks, global average pooling)
    with one output: the age, standardised by the training ages' mean and spread (kept as buffers).
    """

    def __init__(self, image_size: int = 32, width: int = 16, blocks: int = 4):
        super().__init__()
        if image_size < 2 ** blocks or image_size % 2 ** blocks:
            raise ValueError(f"image_size must be a multiple of {2 ** blocks}, got {image_size}")
        self.image_size, self.width = image_size, width
        channels = [3] + [width * 2 ** i for i in range(blocks)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], 1))
        self.register_buffer("age_mean", torch.tensor(45.0))
        self.register_buffer("age_scale", torch.tensor(20.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        side = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, side, side):
            raise ValueError(f"images must have shape (N, 3, {side}, {side}), got {tuple(images.shape)}")
        return self.age_mean + self.age_scale * self.head(self.features(images)).flatten()


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    """Float images (N, 3, H, W) at ``side`` pixels (area averaging when shrinking)."""
    if images.shape[-1] == side:
        return images
    return F.interpolate(images, size=(side, side), mode="area" if images.shape[-1] > side else "bilinear",
                         align_corners=None if images.shape[-1] > side else False)


def _model_images(images) -> torch.Tensor:
    if isinstance(images, np.ndarray) or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8):
        return to_model_range(images)
    return torch.as_tensor(images).float()


@torch.no_grad()
def judge_ages(judge: AgeJudge, images, batch_size: int = 512) -> np.ndarray:
    """The judge's age in years for uint8 (N, H, W, 3) or float (N, 3, H, W) images of any supported size."""
    images = _model_images(images)
    device = module_device(judge)
    ages = []
    with evaluating(judge):
        for start in range(0, len(images), batch_size):
            batch = _resized(images[start:start + batch_size].to(device), judge.image_size)
            ages.append(judge(batch).float().cpu())
    return torch.cat(ages).numpy() if ages else np.zeros(0, dtype=np.float32)


def train_age_judge(images_uint8: np.ndarray, ages, epochs: int = 8, batch_size: int = 64, lr: float = 2e-3,
                    width: int = 16, seed: int = 0, progress: bool = True) -> tuple[AgeJudge, pd.DataFrame]:
    """Train an :class:`AgeJudge` on uint8 faces (N, S, S, 3) of known ``ages`` -> (judge, history).

    Smooth-L1 loss on the standardised age, Adam, random horizontal flips; the learning rate decays
    linearly to 0 over the run. The history has one row per epoch: the mean training loss and the
    training MAE in years.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = AgeJudge(images_uint8.shape[1], width)
    ages = torch.as_tensor(np.asarray(ages, dtype=np.float32))
    judge.age_mean.fill_(float(ages.mean()))
    judge.age_scale.fill_(float(ages.std()))
    images = torch.as_tensor(np.asarray(images_uint8))
    steps_per_epoch = max(1, len(images) // batch_size)
    optimizer = torch.optim.Adam(judge.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1 - step / (epochs * steps_per_epoch))
    rows = []
    judge.train()
    for epoch in tqdm(range(epochs), desc="age judge", disable=not progress):
        order = torch.randperm(len(images), generator=generator)
        losses, errors = [], []
        for step in range(steps_per_epoch):
            batch = order[step * batch_size:(step + 1) * batch_size]
            x = to_model_range(images[batch])
            flip = torch.rand(len(batch), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            predicted = judge(x)
            target = ages[batch]
            loss = F.smooth_l1_loss((predicted - judge.age_mean) / judge.age_scale,
                                    (target - judge.age_mean) / judge.age_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            errors.append((predicted.detach() - target).abs().mean().item())
        rows.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_mae_years": float(np.mean(errors))})
    return judge.eval(), pd.DataFrame(rows)


def _save_age_judge(judge: AgeJudge, path, history: pd.DataFrame | None = None) -> None:
    """Write an age judge as an "age_judge" checkpoint (atomic, plain tensors and values)."""
    config = {"image_size": judge.image_size, "width": judge.width,
              "blocks": sum(isinstance(layer, nn.Conv2d) for layer in judge.features)}
    checkpoint = {"kind": "age_judge", "config": config,
                  "models": {"judge": {k: v.detach().cpu() for k, v in judge.state_dict().items()}}}
    if history is not None:
        checkpoint["history"] = {column: [float(v) for v in history[column]] for column in history.columns}
    save_checkpoint(checkpoint, path)


def load_age_judge(path) -> AgeJudge:
    """An age judge saved by :func:`_save_age_judge`, in eval mode on the CPU."""
    checkpoint = load_checkpoint(path, "age_judge")
    judge = AgeJudge(**checkpoint["config"])
    try:
        judge.load_state_dict(checkpoint["models"]["judge"])
    except RuntimeError as error:
        raise ValueError(f"the age judge weights in {path} do not fit its config: {error}") from None
    return judge.eval()


def judge_report(judge: AgeJudge, images, ages, train_ages) -> dict:
    """MAE in years of the judge on (held-out) faces, and of always predicting the mean training age."""
    ages = np.asarray(ages, dtype=np.float64)
    predicted = judge_ages(judge, images)
    return {"judge_mae": float(np.abs(predicted - ages).mean()),
            "mean_baseline_mae": float(np.abs(np.mean(train_ages) - ages).mean()),
            "pearson": float(np.corrcoef(predicted, ages)[0, 1])}


# ---------------------------------------------------------------- the response curve

@torch.no_grad()
def judged_grid(generator: nn.Module, judge: AgeJudge, condition_of, requested=range(20, 71, 5),
                n_noise: int = 256, seed: int = 0) -> np.ndarray:
    """The judge's age of each of ``n_noise`` generated faces (the same z) at each requested age:
    (len(requested), n_noise). ``condition_of(years)`` gives the generator's (C,) condition for an age."""
    z = torch.randn(n_noise, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    device = module_device(generator)
    rows = []
    with evaluating(generator):
        for years in requested:
            condition = torch.as_tensor(condition_of(years), dtype=torch.float32).reshape(1, -1)
            images = generator(z.to(device), condition.expand(n_noise, -1).to(device)).float().cpu()
            rows.append(judge_ages(judge, images))
    return np.stack(rows)


def response_curve(generator: nn.Module, judge: AgeJudge, condition_of, requested=range(20, 71, 5),
                   n_noise: int = 256, seed: int = 0) -> pd.DataFrame:
    """Requested age -> the judge's ages of generated faces, the same ``n_noise`` z at every age: one row per
    requested age with the mean and standard deviation of the judged ages."""
    grid = judged_grid(generator, judge, condition_of, requested, n_noise, seed)
    return pd.DataFrame({"requested": np.asarray(list(requested), dtype=float), "judged_mean": grid.mean(1),
                         "judged_std": grid.std(1)})


def years_off_interval(grids: dict, requested, draws: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Bootstrap over the noise vectors: each scheme's ``years_off`` (the mean distance in years between
    judged and requested age) with a 95% interval, and each scheme's difference from the first one.

    ``grids``: scheme -> :func:`judged_grid` output, all made with the same z.
    """
    requested = np.asarray(list(requested), dtype=float)
    rng = np.random.default_rng(seed)
    n_noise = next(iter(grids.values())).shape[1]
    picks = rng.integers(0, n_noise, size=(draws, n_noise))
    samples = {name: np.abs(grid[:, picks].mean(2) - requested[:, None]).mean(0) for name, grid in grids.items()}
    first = next(iter(samples.values()))
    rows = []
    for name, values in samples.items():
        difference = values - first
        rows.append({"scheme": name, "years_off": float(np.abs(grids[name].mean(1) - requested).mean()),
                     "low": float(np.percentile(values, 2.5)), "high": float(np.percentile(values, 97.5)),
                     "minus_first_low": float(np.percentile(difference, 2.5)),
                     "minus_first_high": float(np.percentile(difference, 97.5))})
    return pd.DataFrame(rows).set_index("scheme")


def curve_fit(curve: pd.DataFrame) -> dict:
    """Least-squares slope and intercept of judged vs requested age, their Pearson correlation, and the
    mean distance in years between judged and requested age (0 for a perfect age axis)."""
    x, y = curve["requested"].to_numpy(), curve["judged_mean"].to_numpy()
    slope, intercept = np.polyfit(x, y, 1)
    pearson = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else 0.0  # a flat curve follows nothing
    return {"slope": float(slope), "intercept": float(intercept), "pearson": pearson,
            "years_off": float(np.abs(y - x).mean())}


# ---------------------------------------------------------------- ground truth along the axis

@dataclass
class AxisPeople:
    """Held-out mini-wiki people re-rendered at several ages: ``images[i, k]`` is person i at ``ages[k]``."""

    rows: np.ndarray  # row index of each person's photo in the face cache
    ages: tuple
    images: np.ndarray  # uint8 (people, ages, S, S, 3)


def render_people(faces, rows, ages=(20, 30, 40, 50, 60, 70)) -> AxisPeople:
    """Re-render the photo of each cache row at each age (mini-wiki only: the renderer's ground truth)."""
    size = faces.images.shape[1]
    table = faces.table
    images = np.stack([np.stack([render_ground_truth(faces.dataset_root, table["full_path"].iloc[row], age, size)
                                 for age in ages]) for row in rows])
    return AxisPeople(np.asarray(rows), tuple(ages), images)


def mean_faces(images_uint8: np.ndarray, face_ages, ages, window: float = 3) -> dict:
    """The mean face (3, S, S) in [-1, 1] of the faces within ``window`` years of each age."""
    face_ages = np.asarray(face_ages)
    means = {}
    for age in ages:
        near = np.abs(face_ages - age) <= window
        if not near.any():
            raise ValueError(f"no face within {window} years of {age}")
        means[age] = to_model_range(images_uint8[near]).mean(0)
    return means


def encode_and_refine(generator: nn.Module, encoder: nn.Module, images, condition,
                      steps: int = REFINE_STEPS) -> torch.Tensor:
    """z for images at a (C,) or (N, C) condition: the encoder's guess refined by ``aging.refine_latent``."""
    z, _ = refine_latent(generator, encode(encoder, images), images, torch.as_tensor(condition), steps=steps)
    return z


CLEANED_EDIT = "edit, cleaned as chapter 5's age_face does"
RAW_EDIT = "edit: input + G(z, b) - G(z, a)"


def ground_truth_along_axis(generator: nn.Module, encoder: nn.Module, people: AxisPeople, condition_of,
                            mean_face: dict, gaps=(10, 20, 30, 40), refine_steps: int = REFINE_STEPS,
                            edit_settings=None) -> pd.DataFrame:
    """Move every person from age a to age b (|b - a| in ``gaps``, both ways) and compare with the truth.

    Each input (person i rendered at age a) is encoded and its z refined at a's condition
    (``aging.refine_latent``). Outputs: the redraw G(z, b), the edit input + G(z, b) - G(z, a), and that
    edit's change cleaned as chapter 5's ``age_face`` does (``edit_settings``, default ``EditSettings()``,
    with mean_face[b] - mean_face[a] as the average change); baselines: the unchanged input and
    input + mean_face[b] - mean_face[a]. One row per (person, a, b): the RMS distance to the true render
    at b, in [-1, 1] pixel units, per method.
    """
    edit_settings = edit_settings or EditSettings()
    n_people, n_ages = people.images.shape[:2]
    inputs = to_model_range(people.images.reshape(-1, *people.images.shape[2:]))
    source = torch.stack([torch.as_tensor(condition_of(a), dtype=torch.float32)
                          for _ in range(n_people) for a in people.ages])
    z = encode_and_refine(generator, encoder, inputs, source, steps=refine_steps)
    device = module_device(generator)
    with evaluating(generator):
        reconstruction = generator(z.to(device), source.to(device)).float().cpu()
    inputs = inputs.reshape(n_people, n_ages, *inputs.shape[1:])
    z = z.cpu().reshape(n_people, n_ages, -1)
    reconstruction = reconstruction.reshape(inputs.shape)

    def rms(a, b):
        return (a - b).pow(2).flatten(1).mean(1).sqrt().numpy()

    rows = []
    for ia, a in enumerate(people.ages):
        for ib, b in enumerate(people.ages):
            if abs(b - a) not in gaps:
                continue
            x, truth = inputs[:, ia], inputs[:, ib]
            target = torch.as_tensor(condition_of(b), dtype=torch.float32).reshape(1, -1).expand(n_people, -1)
            with evaluating(generator):
                redraw = generator(z[:, ia].to(device), target.to(device)).float().cpu()
            raw = redraw - reconstruction[:, ia]
            average = (mean_face[b] - mean_face[a]).expand_as(x)
            outputs = {
                CLEANED_EDIT: (x + clean_change_with_average(raw, average, edit_settings, guide=x)).clamp(-1, 1),
                RAW_EDIT: (x + raw).clamp(-1, 1),
                "redraw: G(z, b)": redraw,
                "unchanged input": x,
                "input + mean face(b) - mean face(a)": (x + average).clamp(-1, 1),
            }
            errors = {name: rms(output, truth) for name, output in outputs.items()}
            for person in range(n_people):
                rows.append({"person": person, "from": a, "to": b, "gap": abs(b - a),
                             "direction": "older" if b > a else "younger",
                             **{name: float(error[person]) for name, error in errors.items()}})
    return pd.DataFrame(rows)
