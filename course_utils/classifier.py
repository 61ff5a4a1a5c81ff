"""An independent age-group classifier, the yardstick for the generator's conditioning.

Two models share one training loop:

* ``AgeClassifier``: a small CNN (four stride-2 conv blocks, global pooling).
* ``LogisticBaseline``: logistic regression on 16x16 downsampled, standardised
  pixels, so learners can see what depth buys over a linear model.

Both take float images (N, 3, H, W) in [-1, 1] and return logits (N, n_classes).
The age groups are imbalanced (about 1.6:1 to 2.5:1 young:old), so training
weights the loss by inverse class frequency and evaluation reports balanced
accuracy next to plain accuracy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import load_checkpoint, save_checkpoint
from .training import evaluating, module_device
from .tensors import to_model_range
from .paths import run_dir

CHECKPOINT_KIND = "classifier"
PREDICT_BATCH_SIZE = 256


class AgeClassifier(nn.Module):
    """Small CNN: images (N, 3, S, S) in [-1, 1] -> age-group logits (N, n_classes).

    Four conv blocks halve the resolution each (64 -> 4 at the default size),
    then global average pooling makes the head independent of image size.
    """

    architecture = "cnn"

    def __init__(self, n_classes: int, image_size: int = 64, width: int = 32,
                 dropout: float = 0.3):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if image_size < 16 or image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (>= 16), got {image_size}")
        self.n_classes = n_classes
        self.image_size = image_size
        self.width = width
        channels = [3, width, width * 2, width * 4, width * 8]
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels[-1], n_classes),
        )

    def config(self) -> dict:
        """The primitives needed to rebuild this model from a checkpoint."""
        return {"architecture": self.architecture, "n_classes": self.n_classes,
                "image_size": self.image_size, "width": self.width}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_image_batch(images, self.image_size)
        return self.head(self.features(images))


class LogisticBaseline(nn.Module):
    """Logistic regression on downsampled pixels: a linear model as a baseline.

    Images are average-pooled to ``pooled_size`` x ``pooled_size`` x 3, flattened
    and standardised per pixel, then one linear layer gives the logits. The
    standardisation is a ``BatchNorm1d`` without learnable scale whose running
    statistics are a cumulative average (``momentum=None``): after training they
    are the pixel means and variances of the training set, used as-is in eval mode.
    """

    architecture = "logistic"

    def __init__(self, n_classes: int, image_size: int = 64, pooled_size: int = 16):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if image_size % pooled_size:
            raise ValueError(f"image_size {image_size} is not a multiple of pooled_size {pooled_size}")
        self.n_classes = n_classes
        self.image_size = image_size
        self.pooled_size = pooled_size
        n_features = 3 * pooled_size * pooled_size
        self.pool = nn.AdaptiveAvgPool2d(pooled_size)
        self.standardise = nn.BatchNorm1d(n_features, affine=False, momentum=None)
        self.linear = nn.Linear(n_features, n_classes)

    def config(self) -> dict:
        """The primitives needed to rebuild this model from a checkpoint."""
        return {"architecture": self.architecture, "n_classes": self.n_classes,
                "image_size": self.image_size, "pooled_size": self.pooled_size}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_image_batch(images, self.image_size)
        features = self.pool(images).flatten(1)
        return self.linear(self.standardise(features))


ARCHITECTURES = {cls.architecture: cls for cls in (AgeClassifier, LogisticBaseline)}


def _check_image_batch(images: torch.Tensor, image_size: int) -> None:
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (image_size, image_size):
        raise ValueError(
            f"expected images of shape (N, 3, {image_size}, {image_size}), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"expected float images in [-1, 1], got dtype {images.dtype}; "
                         "convert uint8 faces with course_utils.tensors.to_model_range")


def _as_labels(labels, name: str = "labels") -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError(f"{name} must be integer group indices")
    return labels.long().cpu()


def _batches_in_model_range(images, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """Yield float NCHW batches in [-1, 1] from uint8 NHWC faces or float NCHW tensors."""
    images = torch.as_tensor(images)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        # Convert per batch so a whole uint8 cache is never held as floats.
        if batch.dtype == torch.uint8:
            batch = to_model_range(batch)
        yield batch.to(device)


def predict_groups(model: nn.Module, images, batch_size: int = PREDICT_BATCH_SIZE) -> torch.Tensor:
    """Predicted group index (N,) for float images in [-1, 1] (or uint8 faces)."""
    device = module_device(model)
    with evaluating(model):
        chunks = [model(batch).argmax(dim=1).cpu()
                  for batch in _batches_in_model_range(images, batch_size, device)]
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)


def group_recalls(labels, predictions, n_classes: int | None = None) -> np.ndarray:
    """Per-group recall: the fraction of each true group predicted correctly.

    Groups absent from ``labels`` get NaN.
    """
    labels = _as_labels(labels)
    predictions = _as_labels(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and predictions "
                         f"{tuple(predictions.shape)} differ in length")
    n_classes = n_classes or int(max(labels.max(), predictions.max()) + 1)
    recalls = np.full(n_classes, np.nan)
    for group in range(n_classes):
        in_group = labels == group
        if in_group.any():
            recalls[group] = (predictions[in_group] == group).float().mean().item()
    return recalls


def balanced_accuracy(labels, predictions, n_classes: int | None = None) -> float:
    """Mean of per-group recalls over the groups present in ``labels``.

    Unlike plain accuracy it is not inflated by the majority group: always
    answering "young" scores 0.5 with two groups, whatever the imbalance.
    """
    if len(labels) == 0:
        raise ValueError("balanced accuracy needs at least one label")
    return float(np.nanmean(group_recalls(labels, predictions, n_classes)))


def evaluate_classifier(model: nn.Module, images, labels,
                        batch_size: int = PREDICT_BATCH_SIZE) -> dict:
    """Accuracy, balanced accuracy and per-group recall of a classifier on labelled images."""
    labels = _as_labels(labels)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    predictions = predict_groups(model, images, batch_size)
    n_classes = getattr(model, "n_classes", None)
    return {
        "accuracy": float((predictions == labels).float().mean()),
        "balanced_accuracy": balanced_accuracy(labels, predictions, n_classes),
        "group_recall": group_recalls(labels, predictions, n_classes).tolist(),
    }


def balanced_class_weights(labels, n_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights N / (n_classes * count), 1.0 on average per image.

    With them every group contributes equally to the loss, so the classifier
    cannot score well by favouring the majority (young) group.
    """
    counts = torch.bincount(_as_labels(labels), minlength=n_classes).float()
    if len(counts) > n_classes:
        raise ValueError(f"labels contain group {len(counts) - 1} but n_classes is {n_classes}")
    if (counts == 0).any():
        missing = [group for group, count in enumerate(counts.tolist()) if count == 0]
        raise ValueError(f"training labels have no examples of group(s) {missing}")
    return counts.sum() / (n_classes * counts)


def train_classifier(model: nn.Module, images_uint8, labels, val_images=None, val_labels=None,
                     epochs: int = 6, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                     augment: bool = True, progress: bool = True,
                     class_weighting: bool = True) -> tuple[nn.Module, pd.DataFrame]:
    """Train a classifier with Adam and (class-weighted) cross-entropy.

    ``images_uint8`` are cached faces (N, H, W, 3); batches are shuffled by a
    ``torch.Generator`` seeded with ``seed``, flipped horizontally at random when
    ``augment`` is set, and converted to [-1, 1] one batch at a time. The global
    RNG (dropout) is seeded inside a fork, so the same seed and initial weights
    give the same trained weights on the CPU, and the caller's RNG is untouched.
    ``class_weighting`` uses ``balanced_class_weights`` in the loss.

    Returns the model (in eval mode) and a DataFrame with one row per epoch:
    epoch, train_loss, train_acc, val_acc, val_balanced_acc (NaN without validation data).
    """
    images = torch.as_tensor(images_uint8)
    labels = _as_labels(labels)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 faces (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} training images but {len(labels)} labels")
    if len(images) < 2:
        raise ValueError("training needs at least 2 images (BatchNorm uses batch statistics)")
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    n_classes = model.n_classes
    device = module_device(model)
    weights = balanced_class_weights(labels, n_classes) if class_weighting else None
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffler = torch.Generator().manual_seed(seed)
    rows = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in tqdm(range(1, epochs + 1), desc="training classifier", disable=not progress):
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            order = torch.randperm(len(images), generator=shuffler)
            for start in range(0, len(images), batch_size):
                index = order[start:start + batch_size]
                if len(index) < 2:
                    continue  # BatchNorm cannot train on a single image
                batch = to_model_range(images[index]).to(device)
                targets = labels[index].to(device)
                if augment:
                    flip = torch.rand(len(index), generator=shuffler) < 0.5
                    batch[flip.to(device)] = batch[flip.to(device)].flip(-1)
                logits = model(batch)
                loss = loss_fn(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(index)
                correct += (logits.argmax(1) == targets).sum().item()
                seen += len(index)
            row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                   "val_acc": float("nan"), "val_balanced_acc": float("nan")}
            if val_images is not None:
                scores = evaluate_classifier(model, val_images, val_labels)
                row["val_acc"] = scores["accuracy"]
                row["val_balanced_acc"] = scores["balanced_accuracy"]
            rows.append(row)
    model.eval()
    return model, pd.DataFrame(rows)


def default_classifier_path() -> Path:
    """Where the course keeps the trained classifier: ``run_dir()/classifier.pt``."""
    return run_dir() / "classifier.pt"


def save_classifier(model: nn.Module, path: str | Path | None = None,
                    history: pd.DataFrame | None = None) -> Path:
    """Save a classifier (and optionally its training history) as a "classifier" checkpoint."""
    if not hasattr(model, "config"):
        raise ValueError(f"{type(model).__name__} is not a course classifier (no config())")
    path = Path(path) if path is not None else default_classifier_path()
    checkpoint = {
        "kind": CHECKPOINT_KIND,
        "config": model.config(),
        "models": {"classifier": {k: v.detach().cpu() for k, v in model.state_dict().items()}},
    }
    if history is not None:
        # Plain lists of numbers keep the checkpoint loadable with weights_only=True.
        checkpoint["history"] = {column: [float(v) for v in history[column]]
                                 for column in history.columns}
    save_checkpoint(checkpoint, path)
    return path


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu",
                    return_history: bool = False):
    """Rebuild a saved classifier in eval mode (default path: ``run_dir()/classifier.pt``).

    With ``return_history`` also returns the training history DataFrame (or None).
    """
    path = Path(path) if path is not None else default_classifier_path()
    checkpoint = load_checkpoint(path, CHECKPOINT_KIND)
    config = dict(checkpoint["config"])
    architecture = config.pop("architecture", AgeClassifier.architecture)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{path} holds an unknown classifier architecture {architecture!r}")
    model = ARCHITECTURES[architecture](**config)
    model.load_state_dict(checkpoint["models"]["classifier"])
    model.to(device).eval()
    if not return_history:
        return model
    history = checkpoint.get("history")
    history = pd.DataFrame(history) if history is not None else None
    if history is not None and "epoch" in history:
        history["epoch"] = history["epoch"].astype(int)
    return model, history
