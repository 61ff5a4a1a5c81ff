"""The training code a chapter shows is the code the package runs.

Chapter 2 writes out the GAN step, chapter 4 the encoder step and chapter 5 the
refinement loop and the cleaning of the edit's change. Each function is taken from the committed notebook and run
beside the package's copy from the same state: if the two drift apart, the
weights (or z) differ and this fails.
"""
import ast
import copy
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course_utils import course
from course_utils.age_change import EditSettings, clean_change_with_average
from course_utils.aging import refine_latent
from course_utils.models import Discriminator, Encoder, Generator
from course_utils.tensors import one_hot
from course_utils.train_encoder import encoder_step
from course_utils.train_gan import gan_step

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_function(notebook: str, name: str, replace: tuple[str, str] | None = None):
    """The function ``name`` as defined in a code cell of ``notebook`` (optionally with one edit)."""
    for cell in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells:
        if cell.cell_type != "code" or f"def {name}(" not in cell.source:
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                source = ast.get_source_segment(cell.source, node)
                if replace:
                    assert replace[0] in source, replace
                    source = source.replace(*replace)
                namespace = {"torch": torch, "F": F, "bce": F.binary_cross_entropy_with_logits, "course": course}
                exec(compile(source, f"{notebook}:{name}", "exec"), namespace)
                return namespace[name]
    raise AssertionError(f"{notebook} defines no function {name}()")


def same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.parameters(), b.parameters()))


def gan_state():
    torch.manual_seed(0)
    generator, discriminator = Generator(16, 2, 32, width=8), Discriminator(2, 32, width=8)
    real = torch.rand(6, 3, 32, 32) * 2 - 1
    y = one_hot(torch.tensor([0, 1, 0, 1, 1, 0]), 2)
    return generator, discriminator, real, y, torch.randn(6, 16)


def run_gan_step(step, generator, discriminator, real, y, z):
    generator, discriminator = copy.deepcopy(generator), copy.deepcopy(discriminator)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(2):
        step(generator, discriminator, opt_g, opt_d, real, y, z)
    return generator, discriminator


def test_chapter2_gan_step_is_the_package_step():
    generator, discriminator, real, y, z = gan_state()
    shown = run_gan_step(notebook_function("02_cgan.ipynb", "train_step"), generator, discriminator, real, y, z)
    package = run_gan_step(gan_step, generator, discriminator, real, y, z)
    assert same_parameters(shown[0], package[0]) and same_parameters(shown[1], package[1])


def test_a_drifted_gan_step_is_caught():
    """A copy whose G loss aims at 0.9 instead of 1: the comparison above must notice."""
    drifted = notebook_function("02_cgan.ipynb", "train_step",
                                ("torch.ones_like(logits_g)", "torch.full_like(logits_g, 0.9)"))
    generator, discriminator, real, y, z = gan_state()
    shown = run_gan_step(drifted, generator, discriminator, real, y, z)
    package = run_gan_step(gan_step, generator, discriminator, real, y, z)
    assert not same_parameters(shown[0], package[0])


def test_chapter4_encoder_step_is_the_package_step():
    torch.manual_seed(0)
    generator = Generator(16, 2, 32, width=8).eval()
    encoder = Encoder(16, 32, width=8, hidden=32)
    shown_step = notebook_function("04_encoder.ipynb", "encoder_train_step")
    results = []
    for step in (shown_step, encoder_step):
        model = copy.deepcopy(encoder)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
        noise = torch.Generator().manual_seed(1)
        for _ in range(2):
            step(model, generator, optimizer, 8, noise)
        results.append(model)
    assert same_parameters(*results)


@pytest.mark.parametrize("steps", [0, 5])
def test_chapter5_refinement_is_refine_latent(steps):
    torch.manual_seed(0)
    generator = Generator(16, 2, 32, width=8).eval()
    photos = torch.rand(3, 3, 32, 32) * 2 - 1
    y = one_hot(torch.tensor([0, 1, 1]), 2)
    z_start = torch.randn(3, 16)
    shown = notebook_function("05_aging.ipynb", "refine")(generator, z_start, photos, y, steps=steps)
    package, _ = refine_latent(generator, z_start, photos, y, steps=steps)
    assert torch.allclose(shown, package, atol=1e-6)
    assert all(p.requires_grad for p in generator.parameters())


def test_chapter5_cleaning_is_the_package_cleaning_with_its_default_settings():
    torch.manual_seed(0)
    raw, average, photos = torch.randn(3, 3, 32, 32) * 0.2, torch.randn(3, 3, 32, 32) * 0.05, torch.rand(3, 3, 32, 32) * 2 - 1
    shown = notebook_function("05_aging.ipynb", "clean")(raw, average, photos)
    assert torch.allclose(shown, clean_change_with_average(raw, average, EditSettings(), guide=photos), atol=1e-6)


def test_chapter5_cleaning_defaults_are_the_packages():
    """The settings written on the page are EditSettings' defaults (changed by scripts/tune_edit.py)."""
    import inspect

    defaults = inspect.signature(notebook_function("05_aging.ipynb", "clean")).parameters
    settings = EditSettings()
    assert settings.smoothing == 1, "the page's clean() has no box filter"
    assert (defaults["mask_scale"].default, defaults["model_weight"].default, defaults["radius"].default,
            defaults["eps"].default) == (settings.mask_scale, settings.model_weight, settings.guide_radius,
                                         settings.guide_eps)
