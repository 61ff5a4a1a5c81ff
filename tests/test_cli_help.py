"""`python -m course_utils <command> --help`: each option's meaning and the default this machine uses."""
import pytest
import torch

from course_utils import presets
from course_utils.__main__ import main


def on_a_cpu(monkeypatch):
    cpu = lambda prefer=None: torch.device("cpu")  # noqa: E731
    monkeypatch.setattr("course_utils.device.pick_device", cpu)
    monkeypatch.setattr("course_utils.run_configs.pick_device", cpu)


def help_text(command, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("dataset, row", [("mini-wiki", "course-cpu"), ("wiki", "real-cpu")])
def test_train_gan_help_shows_meanings_and_the_presets_default_here(dataset, row, capsys, monkeypatch):
    monkeypatch.setenv("FACE_AGING_DATASET", dataset)
    monkeypatch.delenv("FACE_AGING_RUN_SIZE", raising=False)
    on_a_cpu(monkeypatch)
    text = help_text("train-gan", capsys)
    assert f"preset '{row}'" in text
    assert f"(default here: {presets.PRESETS[row].gan_steps})" in text.split("--steps STEPS train", 1)[1][:200]
    assert f"base channel width of the model(s) (default here: {presets.PRESETS[row].gan_width})" in text
    assert "D's target for real faces" in text


def test_train_encoder_help_shows_the_encoders_own_defaults(capsys, monkeypatch):
    monkeypatch.delenv("FACE_AGING_DATASET", raising=False)
    monkeypatch.delenv("FACE_AGING_RUN_SIZE", raising=False)
    on_a_cpu(monkeypatch)
    text = help_text("train-encoder", capsys)
    row = presets.PRESETS["course-cpu"]
    assert f"(default here: {row.encoder_steps})" in text.split("--steps STEPS train", 1)[1][:200]
    assert f"units of the encoder's hidden fully connected layer (default here: {row.encoder_hidden})" in text
