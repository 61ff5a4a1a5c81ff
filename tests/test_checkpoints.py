"""Checkpoints: atomic writes, safe loading, kind and config checks, RNG states."""
import os
import random
import zipfile

import numpy as np
import pytest
import torch

from course_utils.checkpoints import (
    CheckpointError,
    capture_rng_state,
    check_config,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def small_checkpoint(kind="gan", value=1.0):
    return {
        "kind": kind,
        "config": {"z_dim": 8, "width": 4},
        "models": {"generator": {"weight": torch.full((3,), value)}},
        "step": 5,
        "history": {"step": [1, 2], "loss_d": [0.5, 0.4]},
    }


def test_round_trip(tmp_path):
    path = save_checkpoint(small_checkpoint(), tmp_path / "run" / "gan.pt")
    loaded = load_checkpoint(path, "gan")
    assert loaded["step"] == 5 and loaded["config"] == {"z_dim": 8, "width": 4}
    assert torch.equal(loaded["models"]["generator"]["weight"], torch.ones(3))


def test_wrong_kind_is_a_clear_error(tmp_path):
    path = save_checkpoint(small_checkpoint(kind="encoder"), tmp_path / "encoder.pt")
    with pytest.raises(ValueError, match="'encoder' checkpoint, but a 'gan' checkpoint was expected"):
        load_checkpoint(path, "gan")


def test_unknown_kind_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_checkpoint({"kind": "banana", "config": {}, "models": {}}, tmp_path / "x.pt")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt", "gan")


class Payload:
    """Unpickling this object would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "gan.pt"
    torch.save({"kind": "gan", "config": {}, "models": {}, "trap": Payload(marker)}, path)
    with pytest.raises(RuntimeError, match="refusing to load"):
        load_checkpoint(path, "gan")
    assert not marker.exists()
    # The file really carries the call (a full unpickle would run it).
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"system" in pickled and str(marker).encode() in pickled


def test_failed_save_keeps_the_old_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = save_checkpoint(small_checkpoint(value=1.0), tmp_path / "gan.pt")
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, target, *args, **kwargs):
        real_save(obj, target, *args, **kwargs)
        with open(target, "r+b") as handle:  # leave a truncated file behind, as a crash would
            handle.truncate(os.path.getsize(target) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(small_checkpoint(value=2.0), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan.pt"]
    assert torch.equal(load_checkpoint(path, "gan")["models"]["generator"]["weight"], torch.ones(3))


def test_check_config_names_every_mismatch():
    with pytest.raises(ValueError, match=r"z_dim: checkpoint has 8, expected 16.*width: checkpoint has 4, expected 8"):
        check_config({"z_dim": 8, "width": 4, "lr": 1}, {"z_dim": 16, "width": 8, "lr": 2}, ["z_dim", "width"], "test")
    check_config({"z_dim": 8, "lr": 1}, {"z_dim": 8, "lr": 2}, ["z_dim"], "test")  # lr is not checked


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.normal()  # leaves a cached Gaussian in numpy's state
    state = capture_rng_state()
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    path = save_checkpoint({**small_checkpoint(), "rng": state}, tmp_path / "gan.pt")
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_state(load_checkpoint(path, "gan")["rng"])
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]


def test_a_flipped_byte_in_the_weights_is_refused(tmp_path):
    weight = torch.arange(256, dtype=torch.float32) * 0.37 + 5.0
    checkpoint = {"kind": "gan", "config": {}, "models": {"generator": {"weight": weight}}}
    path = save_checkpoint(checkpoint, tmp_path / "gan.pt")
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weight.numpy().tobytes())  # the tensor is stored uncompressed
    data[at + 401] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"gan\.pt is damaged"):
        load_checkpoint(path, "gan")


def test_empty_and_text_files_give_one_clear_message(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("epoch 3: loss 0.25\n")
    for path in (empty, text):
        with pytest.raises(CheckpointError, match=rf"{path.name} is not a course checkpoint") as error:
            load_checkpoint(path, "gan")
        assert isinstance(error.value, ValueError)
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty, "gan")


def test_digest_is_not_part_of_the_loaded_checkpoint_and_a_resave_round_trips(tmp_path):
    path = save_checkpoint(small_checkpoint(), tmp_path / "gan.pt")
    loaded = load_checkpoint(path, "gan")
    assert "sha256" not in loaded
    again = load_checkpoint(save_checkpoint(loaded, tmp_path / "again.pt"), "gan")
    assert torch.equal(again["models"]["generator"]["weight"], torch.ones(3))


def rewritten(path, replace):
    """A copy of the checkpoint zip at ``path`` with members changed by ``replace(info, data) -> (data, method)``."""
    out = path.with_name("rewritten-" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data, method = replace(info, source.read(info))
            target.writestr(info.filename, data, compress_type=method)
    return out


def test_a_small_checkpoint_whose_tensor_inflates_to_gigabytes_is_refused_before_loading(tmp_path):
    path = save_checkpoint(small_checkpoint(), tmp_path / "gan.pt")
    huge = 1 << 30  # deflates to about 1 MB

    def inflate_the_weights(info, data):
        if "/data/" in info.filename:
            return bytes(huge), zipfile.ZIP_DEFLATED
        return data, zipfile.ZIP_STORED

    bomb = rewritten(path, inflate_the_weights)
    assert bomb.stat().st_size < 5_000_000
    with pytest.raises(CheckpointError, match=r"is compressed .*claim to unpack to 1,073,741,824.*Nothing was loaded"):
        load_checkpoint(bomb, "gan")


def test_a_checkpoint_declaring_more_than_any_course_model_is_refused(tmp_path, monkeypatch):
    from course_utils import checkpoints

    path = save_checkpoint(small_checkpoint(), tmp_path / "gan.pt")
    with zipfile.ZipFile(path) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    monkeypatch.setattr(checkpoints, "MAX_CHECKPOINT_BYTES", declared - 1)
    with pytest.raises(CheckpointError, match="more than any course model"):
        load_checkpoint(path, "gan")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, bad):
    checkpoint = small_checkpoint()
    checkpoint["models"]["generator"]["weight"][1] = bad
    path = save_checkpoint(checkpoint, tmp_path / "gan.pt")
    with pytest.raises(CheckpointError, match=r"generator\.weight holds NaN or infinite weights"):
        load_checkpoint(path, "gan")


def test_a_temporary_file_left_by_a_killed_save_is_removed_by_the_next(tmp_path):
    import subprocess
    import sys
    import time

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)  # a process that has exited: a save it made was killed half way
    hour_ago = time.time() - 3600
    left_by_killed = tmp_path / f".gan.pt.{dead}.x1y2z3.tmp"
    still_writing = tmp_path / f".gan.pt.{os.getpid()}.a1b2c3.tmp"  # a live writer, whatever its age
    just_now = tmp_path / f".gan.pt.{dead}.q1w2e3.tmp"  # too recent to judge
    for temporary in (left_by_killed, still_writing, just_now):
        temporary.write_bytes(b"x" * 1000)
    for temporary in (left_by_killed, still_writing):
        os.utime(temporary, (hour_ago, hour_ago))
    save_checkpoint(small_checkpoint(), tmp_path / "gan.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gan.pt", still_writing.name, just_now.name])
