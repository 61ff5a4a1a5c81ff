"""Small context managers for module modes, shared by training, measuring and aging."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU if it has none)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode inside the block (BatchNorm uses running stats); previous modes after."""
    previous = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, was_training in zip(modules, previous):
            module.train(was_training)


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside the block, for measuring; previous modes after."""
    with eval_mode(*modules), torch.no_grad():
        yield


@contextlib.contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """The module's parameters need no gradient inside the block; restored after.

    Gradients still flow *through* the module to its inputs, e.g. to a latent z.
    """
    trainable = [p for p in module.parameters() if p.requires_grad]
    try:
        for parameter in trainable:
            parameter.requires_grad_(False)
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
