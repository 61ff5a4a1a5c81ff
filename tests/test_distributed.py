"""Several processes: the sharded sampler, DDP wrapping rules, and a real 2-process torchrun."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_utils.checkpoints import load_checkpoint
from course_utils.conditions import THERMOMETER_THRESHOLDS
from course_utils.distributed import DistributedContext, wrap_ddp
from course_utils.train_gan import FaceBatches

REPO = Path(__file__).resolve().parents[1]


def sampler(n_items, batch_size, seed, rank=0, world_size=1):
    """FaceBatches over n_items blank 4x4 faces: only its index stream matters here."""
    images = torch.zeros(n_items, 4, 4, 3, dtype=torch.uint8)
    return FaceBatches(images, torch.zeros(n_items), 1, batch_size, seed, rank=rank, world_size=world_size)


def test_each_rank_gets_a_disjoint_shard_reshuffled_every_epoch():
    samplers = [sampler(20, 3, seed=1, rank=rank, world_size=2) for rank in range(2)]
    assert samplers[0].batches_per_epoch == 3  # 10 per rank, whole batches only
    epochs = []
    for _ in range(2):
        batches = [[s.next_indices() for _ in range(3)] for s in samplers]
        shard_0, shard_1 = (set(torch.cat(b).tolist()) for b in batches)
        assert len(shard_0) == len(shard_1) == 9 and not shard_0 & shard_1
        epochs.append(torch.cat(batches[0]).tolist())
    assert epochs[0] != epochs[1]
    assert samplers[0].epoch == 1


def test_sampler_state_continues_the_same_stream():
    original = sampler(17, 4, seed=5)
    for _ in range(6):
        original.next_indices()
    copy = sampler(17, 4, seed=5)
    copy.load_state_dict(original.state_dict())
    for _ in range(9):  # across two epoch boundaries
        assert torch.equal(original.next_indices(), copy.next_indices())


def test_too_small_dataset_for_the_ranks_is_rejected():
    with pytest.raises(ValueError, match="fewer than one batch"):
        sampler(10, 8, seed=0, rank=0, world_size=2)


def test_sync_batchnorm_is_refused_on_gloo():
    context = DistributedContext(rank=0, world_size=2, backend="gloo")
    with pytest.raises(ValueError, match="NCCL"):
        wrap_ddp(torch.nn.BatchNorm2d(3), context, sync_batchnorm=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*arguments: str, out: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
        f"--master-port={free_port()}", "-m", "course_utils", *arguments,
        "--device", "cpu", "--out", str(out), "--no-progress", "--seed", "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def rank_digests(stem: Path) -> list[str]:
    return [stem.with_name(f"{stem.name}.rank{rank}").read_text().strip() for rank in range(2)]


@pytest.mark.slow
def test_torchrun_gloo_trains_identical_replicas_and_resumes(tmp_path):
    gan = ["train-gan", "--synthetic-data", "48", "--image-size", "32", "--width", "4", "--z-dim", "8",
           "--batch-size", "8", "--log-every", "2", "--sample-every", "4", "--checkpoint-every", "2"]
    torchrun(*gan, "--steps", "4", "--digest-file", str(tmp_path / "gan-a"), out=tmp_path)
    first = rank_digests(tmp_path / "gan-a")
    assert first[0] == first[1]
    assert load_checkpoint(tmp_path / "gan.pt", "gan")["step"] == 4

    torchrun(*gan, "--steps", "6", "--resume", "--digest-file", str(tmp_path / "gan-b"), out=tmp_path)
    second = rank_digests(tmp_path / "gan-b")
    assert second[0] == second[1] != first[0]
    checkpoint = load_checkpoint(tmp_path / "gan.pt", "gan")
    assert checkpoint["step"] == 6 and checkpoint["world_size"] == 2
    assert checkpoint["history"]["step"] == [2, 4, 6]  # the resumed run kept the earlier history

    # Every rank resumed its own stream: the result equals a 6-step run that went straight through.
    torchrun(*gan, "--steps", "6", "--digest-file", str(tmp_path / "gan-straight"), out=tmp_path / "straight")
    assert rank_digests(tmp_path / "gan-straight") == second

    torchrun("train-encoder", "--steps", "3", "--width", "4", "--batch-size", "8", "--log-every", "1",
             "--digest-file", str(tmp_path / "encoder"), out=tmp_path)
    encoder_digests = rank_digests(tmp_path / "encoder")
    assert encoder_digests[0] == encoder_digests[1]
    assert load_checkpoint(tmp_path / "encoder.pt", "encoder")["step"] == 3


@pytest.mark.slow
def test_torchrun_trains_an_age_axis_scheme(tmp_path):
    """``train-gan --condition`` under torchrun: identical replicas, and the checkpoint records the scheme.

    The thermometer's many-hot code is the one condition unlike the age groups' one-hot code that the test
    above trains; six-groups is one-hot too, so a launch of its own would repeat that path."""
    scheme = "thermometer"
    torchrun("train-gan", "--condition", scheme, "--synthetic-data", "48", "--image-size", "32", "--width", "4",
             "--z-dim", "8", "--batch-size", "8", "--steps", "3", "--log-every", "1", "--sample-every", "3",
             "--digest-file", str(tmp_path / "gan"), out=tmp_path)
    digests = rank_digests(tmp_path / "gan")
    assert digests[0] == digests[1]
    config = load_checkpoint(tmp_path / "gan.pt", "gan")["config"]
    assert config["condition"] == scheme and config["n_classes"] == len(THERMOMETER_THRESHOLDS)
