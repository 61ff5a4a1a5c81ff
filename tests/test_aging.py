"""encode / refine_latent / age_face / LatentCache with tiny stand-in models."""
import numpy as np
import pytest
import torch
from conftest import FixedClassifier, TinyEncoder, TinyGenerator

from pathlib import Path

from course_utils.age_change import EditSettings, guided_filter
from course_utils.aging import AgingResult, LatentCache, age_face, encode, refine_latent
from course_utils.photo_aging import age_photo, edit_photo
from course_utils.photo import NoFaceFound, find_face, load_photo
from course_utils.tensors import one_hot

Z_DIM, N_CLASSES, SIZE = 8, 2, 8


@pytest.fixture
def models():
    torch.manual_seed(0)
    generator, encoder = TinyGenerator(SIZE, Z_DIM, N_CLASSES), TinyEncoder(SIZE, Z_DIM)
    # Give BatchNorm non-trivial running statistics, as after training.
    with torch.no_grad():
        generator(torch.randn(64, Z_DIM), one_hot(torch.randint(0, 2, (64,)), N_CLASSES))
    generator.calls = 0
    return generator, encoder


def a_face(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def test_encode_uses_eval_mode_without_gradients_and_restores_mode(models):
    _, encoder = models
    encoder.train()
    z = encode(encoder, a_face()[None])
    assert z.shape == (1, Z_DIM) and not z.requires_grad
    assert encoder.training


def test_refine_latent_lowers_the_pixel_loss_and_leaves_generator_untouched(models):
    generator, _ = models
    generator.train()
    flags_before = [p.requires_grad for p in generator.parameters()]
    weights_before = [p.detach().clone() for p in generator.parameters()]
    condition = one_hot(torch.tensor([0, 1, 1]), N_CLASSES)
    with torch.no_grad():
        generator.eval()
        targets = generator(torch.randn(3, Z_DIM), condition)
        generator.train()
    z_init = torch.randn(3, Z_DIM)

    z, history = refine_latent(generator, z_init, targets, condition, steps=60, lr=0.05)

    assert z.shape == (3, Z_DIM) and not z.requires_grad
    assert set(history) == {"total", "pixel", "prior"} and len(history["pixel"]) == 60
    assert history["pixel"][-1] < 0.5 * history["pixel"][0]
    assert generator.training, "train mode must be restored"
    assert [p.requires_grad for p in generator.parameters()] == flags_before
    assert all(p.grad is None for p in generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights_before, generator.parameters()))
    assert not torch.equal(z_init, z)


def test_refine_latent_returns_the_best_latent_seen(models):
    generator, _ = models
    condition = one_hot(torch.tensor([0]), N_CLASSES)
    targets = torch.zeros(1, 3, SIZE, SIZE)
    z, history = refine_latent(generator, torch.randn(1, Z_DIM), targets, condition, steps=30, lr=2.0)
    generator.eval()
    with torch.no_grad():
        final_pixel = (generator(z, condition) - targets).pow(2).mean().item()
    assert final_pixel <= min(history["pixel"]) + 1e-6


def test_refine_latent_prior_pulls_norm_towards_sqrt_z_dim(models):
    generator, _ = models
    condition = one_hot(torch.tensor([0]), N_CLASSES)
    z_far = torch.full((1, Z_DIM), 5.0)  # norm sqrt(8) * 5, far outside the N(0, I) shell
    with torch.no_grad():
        generator.eval()
        targets = generator(z_far, condition)
    z, _ = refine_latent(generator, z_far, targets, condition, steps=40, lr=0.1, prior_weight=10.0)
    assert z.norm() < z_far.norm()


def test_refine_latent_zero_steps_and_bad_arguments(models):
    generator, _ = models
    z0 = torch.randn(2, Z_DIM)
    targets = torch.zeros(2, 3, SIZE, SIZE)
    z, history = refine_latent(generator, z0, targets, one_hot(torch.tensor([0]), N_CLASSES)[0], steps=0)
    assert torch.equal(z, z0) and history["pixel"] == []
    with pytest.raises(ValueError, match="z_init must be"):
        refine_latent(generator, torch.randn(3, Z_DIM), targets, torch.tensor([1.0, 0.0]), steps=1)
    with pytest.raises(ValueError, match="crop them to the generator's size"):
        refine_latent(generator, z0, torch.zeros(2, 3, 16, 16), torch.tensor([1.0, 0.0]), steps=1)


def test_age_face_result_and_reconstruction_equals_aged_at_source(models):
    generator, encoder = models
    result = age_face(a_face(), 1, generator, encoder, source=1, refine_steps=5)
    assert isinstance(result, AgingResult)
    for image in (result.original, result.reconstruction, result.aged, result.edit, result.redraw):
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert np.array_equal(result.original, a_face())
    assert np.array_equal(result.reconstruction, result.redraw)
    assert np.array_equal(result.edit, result.original)  # no age change: the edit leaves the photo alone
    assert result.output == "edit" and result.aged is result.edit
    assert result.z.shape == (Z_DIM,) and result.source == 1 and result.target == 1
    assert len(result.history["pixel"]) == 5


def test_age_face_soft_target_lies_between_groups(models):
    generator, encoder = models
    cache = LatentCache()
    young, middle, old = (
        age_face(a_face(), target, generator, encoder, source=0, refine_steps=0, cache=cache).aged.astype(int)
        for target in (0, 0.5, 1)
    )
    assert not np.array_equal(young, old)
    assert not np.array_equal(middle, young) and not np.array_equal(middle, old)
    assert np.abs(middle - young).mean() < np.abs(old - young).mean()


def test_float_target_on_a_group_equals_the_int_target(models):
    generator, encoder = models
    as_int = age_face(a_face(), 1, generator, encoder, source=0, refine_steps=0)
    as_float = age_face(a_face(), 1.0, generator, encoder, source=0, refine_steps=0)
    assert np.array_equal(as_int.aged, as_float.aged)


def test_cache_makes_a_new_target_cost_one_generator_pass(models):
    generator, encoder = models
    cache = LatentCache()
    first = age_face(a_face(), 0, generator, encoder, source=0, refine_steps=10, cache=cache)
    encoder_calls, generator_calls = encoder.calls, generator.calls
    second = age_face(a_face(), 1, generator, encoder, source=0, refine_steps=10, cache=cache)
    assert encoder.calls == encoder_calls
    assert generator.calls == generator_calls + 1
    assert second.history is None and torch.equal(first.z, second.z)
    assert np.array_equal(first.reconstruction, second.reconstruction)
    assert cache.hits == 1 and cache.misses == 1

    age_face(a_face(seed=1), 1, generator, encoder, source=0, refine_steps=10, cache=cache)
    age_face(a_face(), 1, generator, encoder, source=1, refine_steps=10, cache=cache)
    assert cache.misses == 3, "another face or another source must not reuse the latent"


def test_source_from_classifier_or_a_clear_error(models):
    generator, encoder = models
    result = age_face(a_face(), 0, generator, encoder, classifier=FixedClassifier(1), refine_steps=0)
    assert result.source == 1
    with pytest.raises(ValueError, match="pass source=<group index> or a classifier"):
        age_face(a_face(), 0, generator, encoder, refine_steps=0)


@pytest.mark.parametrize(
    "target, source, message",
    [(2, 0, "target group 2"), (1.5, 0, "outside"), ("old", 0, "target must be"), (True, 0, "target must be"), (0, 5, "source group 5")],
)
def test_age_face_bad_groups(models, target, source, message):
    generator, encoder = models
    with pytest.raises(ValueError, match=message):
        age_face(a_face(), target, generator, encoder, source=source, refine_steps=0)


def test_age_face_accepts_a_float_tensor(models):
    generator, encoder = models
    face = torch.zeros(3, SIZE, SIZE)
    result = age_face(face, 0, generator, encoder, source=0, refine_steps=0)
    assert np.all((result.original == 127) | (result.original == 128))


def test_latent_cache_evicts_least_recently_used():
    cache = LatentCache(max_items=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_edit_is_the_photo_plus_the_age_change_and_is_the_default(models):
    generator, encoder = models
    cache = LatentCache()
    raw = EditSettings.raw()
    edit = age_face(a_face(), 1, generator, encoder, source=0, refine_steps=2, cache=cache, edit_settings=raw)
    redraw = age_face(a_face(), 1, generator, encoder, source=0, refine_steps=2, cache=cache, output="redraw",
                      edit_settings=raw)
    assert edit.output == "edit" and redraw.output == "redraw"
    assert np.array_equal(edit.aged, edit.edit) and np.array_equal(redraw.aged, redraw.redraw)
    assert np.array_equal(edit.edit, redraw.edit) and np.array_equal(edit.redraw, redraw.redraw)
    # The raw change is G(z, target) - G(z, source); the uint8 images round it by at most a level each.
    assert np.abs(edit.change - (edit.redraw.astype(np.float32) - edit.reconstruction)).max() <= 1.0
    assert np.array_equal(edit.edit, np.clip(np.rint(a_face() + edit.change), 0, 255).astype(np.uint8))
    assert not np.array_equal(edit.edit, edit.redraw)
    with pytest.raises(ValueError, match="output must be one of"):
        age_face(a_face(), 1, generator, encoder, source=0, refine_steps=0, output="aged")


def test_cleaned_edit_keeps_what_age_never_changes_and_leans_on_the_average(models):
    generator, encoder = models
    means = torch.zeros(2, 3, SIZE, SIZE)
    means[1, :, SIZE // 2:] = 0.5  # the groups differ in the lower half only
    face = a_face()
    unguided = EditSettings(guide_radius=0)  # the guided filter may move the mask's edge (tested below)
    result = age_face(face, 1, generator, encoder, source=0, refine_steps=2, group_means=means, edit_settings=unguided)
    assert np.array_equal(result.edit[:SIZE // 2], face[:SIZE // 2])  # mask closed: untouched
    assert not np.array_equal(result.edit[SIZE // 2:], face[SIZE // 2:])
    average_only = age_face(face, 1, generator, encoder, source=0, refine_steps=2, group_means=means,
                            edit_settings=EditSettings(model_weight=0.0, guide_radius=0))
    assert np.allclose(average_only.change[SIZE // 2:], 0.5 * 127.5) and not average_only.change[:SIZE // 2].any()
    back = age_face(face, 0, generator, encoder, source=1, refine_steps=2, group_means=means,
                    edit_settings=EditSettings(model_weight=0.0, guide_radius=0))
    assert np.allclose(back.change, -average_only.change)  # the average change runs both ways
    with pytest.raises(ValueError, match="smoothing"):
        EditSettings(smoothing=2)
    with pytest.raises(ValueError, match="guide_radius"):
        EditSettings(guide_eps=0.0)


def test_guided_filter_runs_without_group_means(models):
    """No mean faces (no mask, no blend): the default edit still follows the photo's edges."""
    generator, encoder = models
    face = a_face()
    raw = age_face(face, 1, generator, encoder, source=0, refine_steps=2, edit_settings=EditSettings.raw())
    guided = age_face(face, 1, generator, encoder, source=0, refine_steps=2, edit_settings=EditSettings(smoothing=1))
    photo = torch.as_tensor(face, dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1
    change = torch.as_tensor(raw.change).permute(2, 0, 1)[None] / 127.5
    settings = EditSettings()
    expected = guided_filter(photo, change, settings.guide_radius, settings.guide_eps)[0].permute(1, 2, 0).numpy() * 127.5
    assert np.allclose(guided.change, expected, atol=1e-3)
    assert not np.allclose(guided.change, raw.change, atol=1e-3)


def test_guided_filter_sharpens_a_blurry_change_at_the_photos_edge():
    """A soft step in the change where the photo has a sharp one: the filtered change jumps at the photo's edge."""
    size, edge = 32, 16
    guide = torch.full((1, 3, size, size), -0.8)
    guide[:, :, edge:] = 0.6
    rows = torch.arange(size, dtype=torch.float32)
    change = torch.sigmoid((rows - (edge - 0.5)) / 3).view(1, 1, size, 1).expand(1, 3, size, size).clone()
    out = guided_filter(guide, change, radius=4, eps=1e-4)
    assert out.shape == change.shape
    jump_before = (change[0, 0, edge] - change[0, 0, edge - 1]).mean()  # 0.08
    jump_after = (out[0, 0, edge] - out[0, 0, edge - 1]).mean()  # 0.36 when written
    assert jump_after > 0.3 and jump_after > 3 * jump_before
    assert torch.allclose(guided_filter(guide, torch.full_like(change, 0.3), 4, 1e-4), torch.tensor(0.3), atol=1e-5)
    flat = guided_filter(torch.zeros_like(guide), change, 2, 1e-4)  # no edges to follow: two 5x5 box averages
    boxed = torch.nn.functional.avg_pool2d(change, 5, 1, 2, count_include_pad=False)
    assert torch.allclose(flat, torch.nn.functional.avg_pool2d(boxed, 5, 1, 2, count_include_pad=False), atol=1e-5)


PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "photos"


@pytest.mark.parametrize("name", ["astronaut.jpg", "camera.jpg"])
def test_real_photo_detect_crop_age_and_edit_the_full_photo(models, name):
    """Plumbing on real photographs with untrained tiny models: not a quality check."""
    generator, encoder = models
    aged = age_photo(PHOTOS / name, 1, generator, encoder, source=0, refine_steps=3)
    found = aged.face
    assert found.detected and aged.result.original.shape == (SIZE, SIZE, 3)
    assert np.array_equal(aged.result.original, find_face(PHOTOS / name, size=SIZE).face)
    photo = np.asarray(load_photo(PHOTOS / name))
    assert aged.edited_photo.shape == photo.shape
    x1, y1, x2, y2 = found.region
    outside = np.ones(photo.shape[:2], bool)
    outside[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = False
    assert np.array_equal(aged.edited_photo[outside], photo[outside])
    assert not np.array_equal(aged.edited_photo[~outside], photo[~outside])
    assert np.array_equal(aged.edited_photo, edit_photo(photo, found.box, aged.result.change))


def test_real_photo_without_a_face_is_not_aged(models):
    generator, encoder = models
    calls = encoder.calls
    with pytest.raises(NoFaceFound, match="no face found"):
        age_photo(PHOTOS / "chelsea.jpg", 1, generator, encoder, source=0, refine_steps=3)
    assert encoder.calls == calls
    centre = age_photo(PHOTOS / "chelsea.jpg", 1, generator, encoder, box="center", source=0, refine_steps=0)
    assert not centre.face.detected and centre.face.box is None
    assert np.array_equal(centre.result.original, find_face(PHOTOS / "chelsea.jpg", box="center", size=SIZE).face)
