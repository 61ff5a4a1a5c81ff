"""The three networks of the course: a conditional DCGAN pair and an encoder.

* ``Generator``: noise z plus an age condition -> a face in [-1, 1].
* ``Discriminator``: a face plus an age condition -> one real/fake logit.
* ``Encoder``: a face -> the z that the generator would need to draw it.

Widths are balanced (the generator's and discriminator's base widths are the
same), unlike the original blog whose discriminator started at 8 channels.
"""
from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED_IMAGE_SIZES = (32, 64, 128)


def _check_image_size(image_size: int) -> int:
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(
            f"image_size={image_size} is not supported; use one of {SUPPORTED_IMAGE_SIZES}"
        )
    return image_size


def _check_condition(condition: torch.Tensor, batch: int, n_classes: int) -> None:
    if condition.ndim != 2 or condition.shape != (batch, n_classes):
        raise ValueError(
            f"condition must have shape ({batch}, {n_classes}), got {tuple(condition.shape)}"
        )


def init_dcgan_weights(module: nn.Module) -> nn.Module:
    """DCGAN initialisation: conv/linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module


class JoinNoiseAndCondition(nn.Module):
    """(N, z_dim) noise and (N, n_classes) condition -> one (N, z_dim + n_classes, 1, 1) map."""

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([z, condition.to(z.dtype)], dim=1)
        return joined[:, :, None, None]


class ConditionedConv2d(nn.Conv2d):
    """A convolution over features with the condition appended as constant label maps.

    The weight is that of ``Conv2d(feature_channels + n_classes, ...)`` applied
    to ``cat([features, condition broadcast to (N, n_classes, H, W)])``, as in
    the original method, and the output is exactly the same. But convolution
    is linear, so the label maps' share is ``sum_c condition[:, c] * response_c``,
    where ``response_c`` is the filter's response to a map of ones in channel c
    (computed once per call on n_classes tiny maps). That skips copying the
    label maps into every feature batch, which on the CPU costs more than the
    extra channels are worth. Soft (non one-hot) conditions work the same way.
    """

    def __init__(self, feature_channels: int, n_classes: int, out_channels: int, kernel_size: int,
                 stride: int, padding: int):
        super().__init__(feature_channels + n_classes, out_channels, kernel_size, stride, padding, bias=False)
        self.feature_channels, self.n_classes = feature_channels, n_classes

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        feature_weight = self.weight[:, : self.feature_channels]
        label_weight = self.weight[:, self.feature_channels :]
        output = F.conv2d(features, feature_weight, None, self.stride, self.padding)
        height, width = features.shape[-2:]
        unit_maps = torch.eye(self.n_classes, dtype=features.dtype, device=features.device)
        unit_maps = unit_maps[:, :, None, None].expand(-1, -1, height, width)
        responses = F.conv2d(unit_maps, label_weight.to(features.dtype), None, self.stride, self.padding)
        # (N, C) @ (C, O*H*W): one small matrix product mixes the per-class responses,
        # accumulated straight into the conv output when its memory layout allows.
        condition, responses = condition.to(output.dtype), responses.to(output.dtype).flatten(1)
        if output.is_contiguous():
            return output.view(output.shape[0], -1).addmm_(condition, responses).view(output.shape)
        return output + torch.mm(condition, responses).view(output.shape)


class Generator(nn.Module):
    """Conditional DCGAN generator: ``forward(z, condition) -> (N, 3, S, S)`` in [-1, 1].

    The condition is a float vector per image, so one-hot groups and soft
    mixes between groups both work.
    """

    def __init__(self, z_dim: int, n_classes: int, image_size: int = 64, width: int = 32):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.image_size, self.width = _check_image_size(image_size), width
        self.join = JoinNoiseAndCondition()
        channels = width * image_size // 8
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + n_classes, channels, 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        ]
        # Each stride-2 block doubles the side and halves the channels, from 4x4 up to S/2.
        for _ in range(int(math.log2(image_size // 8))):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        _check_condition(condition, z.shape[0], self.n_classes)
        return self.net(self.join(z, condition))


class Discriminator(nn.Module):
    """Conditional DCGAN discriminator: ``forward(images, condition) -> (N,)`` logits.

    No sigmoid at the end: train with ``BCEWithLogitsLoss``, which is the same
    loss as Sigmoid + BCE but stays stable (and is allowed under autocast).
    """

    def __init__(self, n_classes: int, image_size: int = 64, width: int = 32):
        super().__init__()
        self.n_classes, self.image_size, self.width = n_classes, _check_image_size(image_size), width
        self.stem = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True))
        # As in the original method, the condition joins the features after the first conv
        # as label maps (N, n_classes, S/2, S/2); this conv reads features and label maps.
        self.conditioned = ConditionedConv2d(width, n_classes, width * 2, 4, 2, 1)
        channels = width * 2
        layers: list[nn.Module] = [nn.BatchNorm2d(channels), nn.LeakyReLU(0.2, True)]
        for _ in range(int(math.log2(image_size // 16))):  # S/4 down to 4x4
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels * 2),
                nn.LeakyReLU(0.2, True),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        side = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, side, side):
            raise ValueError(f"images must have shape (N, 3, {side}, {side}), got {tuple(images.shape)}")
        _check_condition(condition, images.shape[0], self.n_classes)
        features = self.conditioned(self.stem(images), condition)
        return self.net(features).flatten()


class Encoder(nn.Module):
    """Face -> latent code: ``forward(images) -> (N, z_dim)``.

    The last layer has no activation because z is Gaussian, not bounded.
    """

    def __init__(self, z_dim: int = 100, image_size: int = 64, width: int = 32, hidden: int = 512):
        super().__init__()
        self.z_dim, self.image_size, self.width = z_dim, _check_image_size(image_size), width
        layers: list[nn.Module] = []
        channels_in, channels = 3, width
        for _ in range(int(math.log2(image_size // 4))):  # S down to 4x4
            layers += [
                nn.Conv2d(channels_in, channels, 5, 2, 2, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(True),
            ]
            channels_in, channels = channels, channels * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels_in * 4 * 4, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, z_dim),
        )
        init_dcgan_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        side = self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, side, side):
            raise ValueError(f"images must have shape (N, 3, {side}, {side}), got {tuple(images.shape)}")
        return self.head(self.features(images))


def shape_trace(model: nn.Module, *inputs: torch.Tensor) -> pd.DataFrame:
    """One row per leaf layer run by ``model(*inputs)``: layer name, type, output shape, parameters.

    The model runs once in eval mode without gradients, so BatchNorm
    statistics are left untouched; its training mode is restored afterwards.
    """
    rows: list[dict] = []
    hooks = []

    def record(name: str):
        def hook(layer, _inputs, output):
            rows.append(
                {
                    "layer": name,
                    "type": type(layer).__name__,
                    "output shape": tuple(output.shape),
                    "parameters": sum(p.numel() for p in layer.parameters(recurse=False)),
                }
            )

        return hook

    for name, layer in model.named_modules():
        if name and not list(layer.children()):
            hooks.append(layer.register_forward_hook(record(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return pd.DataFrame(rows, columns=["layer", "type", "output shape", "parameters"])
