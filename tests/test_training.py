"""GAN and encoder training: outputs, exact resume, determinism, checkpoint checks."""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils.__main__ import main
from course_utils.models import Encoder, Generator
from course_utils.checkpoints import load_checkpoint
from course_utils.train_encoder import (
    EncoderConfig,
    latent_r2,
    load_encoder,
    train_encoder,
    unexplained_variance,
)
from course_utils.train_gan import GanConfig, load_generator, train_gan


def tiny_gan_config(**changes):
    settings = dict(z_dim=16, image_size=32, width=4, batch_size=8, steps=6, sample_every=3,
                    checkpoint_every=4, log_every=2, n_sample_noise=3, threads=1, seed=7)
    return GanConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, size=40)


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def all_tensors(checkpoint_or_state):
    """Every tensor in a nested structure, by path."""
    found = {}

    def walk(value, prefix):
        if isinstance(value, torch.Tensor):
            found[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}/{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{prefix}/{index}")

    walk(checkpoint_or_state, "")
    return found


def assert_same_tensors(a, b):
    tensors_a, tensors_b = all_tensors(a), all_tensors(b)
    assert tensors_a.keys() == tensors_b.keys()
    for key in tensors_a:
        assert torch.equal(tensors_a[key], tensors_b[key]), key


def test_train_gan_writes_samples_checkpoint_and_history(faces, tmp_path):
    seen = []
    result = train_gan(*faces, tiny_gan_config(), tmp_path, progress=False,
                       sample_callback=lambda step, images: seen.append((step, images.shape)))
    assert list(result.history.columns) == ["step", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s"]
    assert result.history["step"].tolist() == [2, 4, 6]
    assert result.history[["loss_d", "loss_g"]].notna().all().all()
    assert result.history["d_real"].between(0, 1).all()
    assert sorted(p.name for p in (tmp_path / "gan_samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    assert seen == [(3, (6, 3, 32, 32)), (6, (6, 3, 32, 32))]  # 3 z x 2 age groups
    assert not result.generator.training and next(result.generator.parameters()).device.type == "cpu"
    loaded = load_generator(result.checkpoint_path, average=False)
    assert not loaded.training
    assert_same_tensors(loaded.state_dict(), result.generator.state_dict())


def test_interrupted_and_resumed_run_ends_with_exactly_the_same_weights(faces, tmp_path):
    straight = train_gan(*faces, tiny_gan_config(steps=8), tmp_path / "straight", progress=False)
    train_gan(*faces, tiny_gan_config(steps=4), tmp_path / "resumed", progress=False)
    # Disturb every global generator: the resumed run must not depend on them.
    torch.manual_seed(12345)
    np.random.seed(12345)
    resumed = train_gan(*faces, tiny_gan_config(steps=8), tmp_path / "resumed", resume=True, progress=False)
    assert_same_tensors(straight.generator.state_dict(), resumed.generator.state_dict())
    assert_same_tensors(straight.discriminator.state_dict(), resumed.discriminator.state_dict())
    checkpoints = [torch.load(run / "gan.pt", weights_only=True) for run in (tmp_path / "straight", tmp_path / "resumed")]
    assert_same_tensors(checkpoints[0]["optimizers"], checkpoints[1]["optimizers"])
    assert checkpoints[1]["step"] == 8
    columns = ["step", "loss_d", "loss_g", "d_real", "d_fake"]
    pd.testing.assert_frame_equal(straight.history[columns], resumed.history[columns])


def test_runs_repeat_bit_for_bit(faces, tmp_path):
    first = train_gan(*faces, tiny_gan_config(steps=3), tmp_path / "a", progress=False)
    second = train_gan(*faces, tiny_gan_config(steps=3), tmp_path / "b", progress=False)
    assert_same_tensors(first.generator.state_dict(), second.generator.state_dict())


def test_resume_with_a_different_model_config_names_the_mismatch(faces, tmp_path):
    train_gan(*faces, tiny_gan_config(steps=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"width: checkpoint has 4, expected 8"):
        train_gan(*faces, tiny_gan_config(steps=4, width=8), tmp_path, resume=True, progress=False)


def test_an_encoder_checkpoint_is_not_a_gan(tmp_path):
    generator = Generator(z_dim=8, n_classes=2, image_size=32, width=4)
    config = EncoderConfig.for_generator(generator, width=4, batch_size=8, steps=1, eval_pairs=16, threads=1)
    result = train_encoder(generator, config, tmp_path, progress=False)
    with pytest.raises(ValueError, match="'encoder' checkpoint, but a 'gan' checkpoint was expected"):
        load_generator(result.checkpoint_path)


def test_bad_training_data_is_rejected(faces, tmp_path):
    images, labels = faces
    with pytest.raises(ValueError, match="image_size=64"):
        train_gan(images, labels, tiny_gan_config(image_size=64), tmp_path, progress=False)
    with pytest.raises(ValueError, match="labels must lie in"):
        train_gan(images, labels + 5, tiny_gan_config(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_gan(images[:4], labels[:4], tiny_gan_config(), tmp_path, progress=False)


@pytest.fixture(scope="module")
def tiny_generator():
    """A small generator whose BatchNorm statistics are calibrated, so its images depend on z."""
    torch.manual_seed(0)
    generator = Generator(z_dim=8, n_classes=2, image_size=32, width=4)
    for layer in generator.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None  # cumulative average over the calibration batches
            layer.reset_running_stats()
    with torch.no_grad():
        for _ in range(4):
            generator(torch.randn(256, 8), torch.eye(2).repeat(128, 1))
    return generator.eval()


def tiny_encoder_config(generator, **changes):
    settings = dict(width=8, hidden=64, batch_size=32, steps=60, lr=2e-3, eval_every=30, eval_pairs=256,
                    checkpoint_every=30, log_every=10, threads=1)
    return EncoderConfig.for_generator(generator, **{**settings, **changes})


def test_encoder_unexplained_variance_falls_with_training(tiny_generator, tmp_path):
    torch.set_num_threads(1)
    untrained = Encoder(z_dim=8, image_size=32, width=8, hidden=64)
    before = unexplained_variance(untrained, tiny_generator, n=256)
    result = train_encoder(tiny_generator, tiny_encoder_config(tiny_generator), tmp_path, progress=False)
    assert before > 0.9
    assert result.unexplained_variance < 0.8 * before
    history = result.history.dropna(subset=["unexplained_variance"])
    assert history["step"].tolist() == [30, 60]
    r2 = latent_r2(result.encoder, tiny_generator, n=256)
    assert r2.shape == (8,) and r2.mean() > 0.1
    assert np.allclose(result.r2, latent_r2(result.encoder, tiny_generator, n=256, seed=0))
    assert not result.encoder.training
    assert_same_tensors(load_encoder(result.checkpoint_path).state_dict(), result.encoder.state_dict())


def test_image_loss_trains_through_the_frozen_generator(tiny_generator, tmp_path):
    before = {k: v.clone() for k, v in tiny_generator.state_dict().items()}
    config = tiny_encoder_config(tiny_generator, steps=4, image_loss_weight=1.0)
    result = train_encoder(tiny_generator, config, tmp_path, progress=False)
    assert (result.history["image_loss"] > 0).all()
    assert_same_tensors(tiny_generator.state_dict(), before)  # the caller's generator is untouched


def test_encoder_resume_is_exact_and_checks_config(tiny_generator, tmp_path):
    config = tiny_encoder_config(tiny_generator, steps=6, checkpoint_every=3, eval_every=3, eval_pairs=32)
    straight = train_encoder(tiny_generator, config, tmp_path / "straight", progress=False)
    train_encoder(tiny_generator, dataclasses.replace(config, steps=3), tmp_path / "resumed", progress=False)
    resumed = train_encoder(tiny_generator, config, tmp_path / "resumed", resume=True, progress=False)
    assert_same_tensors(straight.encoder.state_dict(), resumed.encoder.state_dict())
    with pytest.raises(ValueError, match="hidden: checkpoint has 64, expected 32"):
        train_encoder(tiny_generator, dataclasses.replace(config, hidden=32, steps=9), tmp_path / "resumed",
                      resume=True, progress=False)


def test_encoder_must_fit_the_generator(tiny_generator, tmp_path):
    config = dataclasses.replace(tiny_encoder_config(tiny_generator), z_dim=12)
    with pytest.raises(ValueError, match="z_dim"):
        train_encoder(tiny_generator, config, tmp_path, progress=False)


def test_command_line_trains_gan_then_encoder(tmp_path):
    common = ["--device", "cpu", "--out", str(tmp_path), "--no-progress", "--threads", "1", "--width", "4",
              "--batch-size", "8", "--steps", "2"]
    assert main(["train-gan", "--synthetic-data", "16", "--image-size", "32", "--z-dim", "8", *common]) == 0
    assert main(["train-encoder", "--image-loss-weight", "0.5", *common]) == 0
    generator = load_generator(tmp_path / "gan.pt")
    encoder = load_encoder(tmp_path / "encoder.pt")
    assert (generator.z_dim, generator.image_size) == (8, 32)
    assert (encoder.z_dim, encoder.image_size) == (8, 32)
    assert load_checkpoint(tmp_path / "encoder.pt", "encoder")["config"]["image_loss_weight"] == 0.5


@pytest.mark.parametrize("options, message", [
    (["--width", "0"], "width must be at least 1"),
    (["--batch-size", "-1"], "batch_size must be at least 1"),
    (["--z-dim", "0"], "z_dim must be at least 1"),
    (["--image-size", "0"], "image_size must be at least 1"),
    (["--synthetic-data", "0"], "--synthetic-data must be a positive number"),
])
def test_command_line_rejects_bad_settings_before_training(tmp_path, capsys, options, message):
    argv = ["train-gan", "--synthetic-data", "16", "--device", "cpu", "--out", str(tmp_path / "run"),
            "--no-progress", *options]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "gan.pt").exists()


def test_command_line_out_must_be_a_writable_folder(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with pytest.raises(SystemExit):
        main(["train-gan", "--synthetic-data", "16", "--device", "cpu", "--out", str(a_file), "--no-progress"])
    assert "is a file, not a folder" in capsys.readouterr().err
    # A folder that cannot be made. chmod would not stop root (CI runs as root), so mkdir is refused here.
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def refuse_inside_locked(self, *args, **kwargs):
        if locked in (self, *self.parents):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "mkdir", refuse_inside_locked)
        with pytest.raises(SystemExit):
            main(["train-encoder", "--device", "cpu", "--out", str(locked / "run"), "--no-progress"])
    assert "cannot create the folder (Permission denied)" in capsys.readouterr().err


def test_command_line_options_come_from_the_config_fields():
    from course_utils.__main__ import build_parser

    gan_help = build_parser()._subparsers._group_actions[0].choices["train-gan"].format_help()
    for field in dataclasses.fields(GanConfig):
        if field.name != "n_classes":  # from the data
            assert "--" + field.name.replace("_", "-") in gan_help
    assert f"(default here: {GanConfig.sample_every})" in " ".join(gan_help.split())


def test_train_gan_trains_a_learners_own_discriminator_and_its_checkpoint_loads(faces, tmp_path):
    from course_utils.models import Discriminator

    images, labels = faces
    weak = Discriminator(n_classes=2, image_size=32, width=8)
    before = [p.detach().clone() for p in weak.parameters()]
    result = train_gan(images, labels, tiny_gan_config(steps=4), tmp_path, progress=False, discriminator=weak)
    assert result.discriminator is weak and weak.width == 8
    assert any(not torch.equal(a, b) for a, b in zip(before, weak.parameters()))
    generator = load_generator(tmp_path / "gan.pt")  # a default-width generator: loads from the config
    for name, tensor in result.generator_ema.state_dict().items():  # by default the moving average
        assert torch.equal(generator.state_dict()[name], tensor), name
    as_trained = load_generator(tmp_path / "gan.pt", average=False)
    for name, tensor in result.generator.state_dict().items():
        assert torch.equal(as_trained.state_dict()[name], tensor), name
    resumed = train_gan(images, labels, tiny_gan_config(steps=6), tmp_path, resume=True, progress=False,
                        discriminator=Discriminator(n_classes=2, image_size=32, width=8))
    assert resumed.steps == 6
    with pytest.raises(ValueError, match="n_classes"):
        train_gan(images, labels, tiny_gan_config(), tmp_path, progress=False,
                  discriminator=Discriminator(n_classes=3, image_size=32, width=8))


def test_train_encoder_trains_a_learners_own_encoder(tiny_generator, tmp_path):
    mine = Encoder(z_dim=8, image_size=32, width=4, hidden=32)
    config = tiny_encoder_config(tiny_generator, steps=4, width=4, hidden=32, eval_every=4, eval_pairs=32)
    result = train_encoder(tiny_generator, config, tmp_path, progress=False, encoder=mine)
    assert result.encoder is mine
    assert load_encoder(tmp_path / "encoder.pt").width == 4


@pytest.mark.parametrize("command", ["train-gan", "train-encoder"])
def test_command_line_refuses_a_dataset_name_before_creating_anything(tmp_path, monkeypatch, capsys, command):
    home = tmp_path / "deep" / "home"
    monkeypatch.setenv("FACE_AGING_HOME", str(home))
    with pytest.raises(SystemExit) as raised:
        main([command, "--dataset", "../../x", "--synthetic-data", "16", "--device", "cpu", "--no-progress"]
             if command == "train-gan" else [command, "--dataset", "../../x", "--device", "cpu", "--no-progress"])
    assert raised.value.code == 2
    assert "--dataset" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == []  # not home/runs/../../x, nor anything else
    from course_utils import paths

    for folder in (paths.run_dir, paths.cache_dir):  # the name becomes a folder: only known names do
        with pytest.raises(ValueError, match="unknown dataset"):
            folder("../../x")
