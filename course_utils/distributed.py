"""Training beyond one process: torchrun + DistributedDataParallel.

``torchrun --nproc-per-node=N -m course_utils train-gan ...`` starts N
processes with ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set. Each one calls
:func:`init_distributed`, wraps its models with :func:`wrap_ddp`, and draws
its own shard of every epoch from :class:`~course_utils.train_gan.FaceBatches`. Logging,
sample grids and checkpoints happen on rank 0 only.
"""
from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


_DDP_PARAMETERS = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is in a (possibly one-process) training run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, renders samples and writes checkpoints."""
        return self.rank == 0


def init_distributed(device_type: str | None = None) -> DistributedContext:
    """Join the process group that torchrun describes in the environment.

    Without ``WORLD_SIZE`` > 1 this is a single-process run and nothing is
    initialised. NCCL is used on GPUs, gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, backend)


def shutdown_distributed(context: DistributedContext, wait: bool = True) -> None:
    """Leave the process group; with ``wait`` all ranks meet at a barrier first.

    After an error, pass ``wait=False``: the other ranks may never reach the barrier.
    """
    if context.is_distributed and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every rank (a no-op in a single-process run)."""
    if context.is_distributed:
        dist.barrier()


def device_for(context: DistributedContext, device: torch.device) -> torch.device:
    """Each rank of a multi-GPU run gets the GPU of its local rank."""
    if context.is_distributed and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def wrap_ddp(
    module: nn.Module,
    context: DistributedContext,
    *,
    broadcast_buffers: bool = True,
    sync_batchnorm: bool = False,
) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel, or unchanged in a one-process run.

    ``sync_batchnorm`` pools BatchNorm statistics across GPUs; it needs NCCL
    (SyncBatchNorm has no CPU kernels), so asking for it under gloo is an error.
    """
    if not context.is_distributed:
        return module
    if sync_batchnorm:
        if context.backend != "nccl":
            raise ValueError("sync_batchnorm needs the NCCL backend (GPUs); SyncBatchNorm fails on the CPU")
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    device_ids = [context.local_rank] if context.backend == "nccl" else None
    options = {}
    if not broadcast_buffers:
        # Newer torch renames the forward-time buffer broadcast (the init-time sync stays).
        name = "forward_sync_buffers" if "forward_sync_buffers" in _DDP_PARAMETERS else "broadcast_buffers"
        options[name] = False
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, **options)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain model inside a DDP and/or ``torch.compile`` wrapper."""
    if isinstance(module, nn.parallel.DistributedDataParallel):
        module = module.module
    return getattr(module, "_orig_mod", module)


def sync_buffers_from_main(module: nn.Module, context: DistributedContext) -> None:
    """Overwrite every buffer (e.g. BatchNorm running statistics) with rank 0's copy."""
    if context.is_distributed:
        for buffer in unwrap(module).buffers():
            dist.broadcast(buffer.data, src=0)


def state_digest(module: nn.Module) -> str:
    """SHA-256 of every parameter and buffer of ``module``: equal digests mean identical weights."""
    digest = hashlib.sha256()
    for name, tensor in unwrap(module).state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def assert_replicas_match(module: nn.Module, context: DistributedContext, what: str = "model") -> str:
    """Check that every rank holds bit-identical weights; returns this rank's digest."""
    digest = state_digest(module)
    if context.is_distributed:
        digests: list[str | None] = [None] * context.world_size
        dist.all_gather_object(digests, digest)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the ranks' {what} weights differ after training: {digests}")
    return digest
