"""Data-parallel training with torch.distributed: ``torchrun --nproc-per-node N seqlab train ...``.

Under torchrun (``WORLD_SIZE`` > 1 in the environment) every process joins one process group
(gloo on CPU, NCCL on CUDA), builds the same model from the same seed, draws the same *global*
batch from the same data generator and keeps its own share of the rows (a distributed sampler
over the global batch); DDP averages the gradients. Micro-batch losses are weighted by scored
positions over the whole global batch, so N processes take exactly the steps one process takes
with the combined batch. Rank 0 alone logs and writes checkpoints; every rank resumes from them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from seqlab.errors import ConfigError
from seqlab.tasks.base import Batch


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (or stay single-process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend)
    return info


def device_for(info: DistInfo, device: str) -> str:
    """Each process drives its own GPU (``cuda:LOCAL_RANK``); CPU processes share ``cpu``."""
    return f"cuda:{info.local_rank}" if info.active and device.startswith("cuda") else device


def shard(batch: Batch, info: DistInfo) -> Batch:
    """This rank's rows of a global batch (contiguous, as even as possible)."""
    if not info.active:
        return batch
    B = batch.inputs.shape[0]
    if info.world > B:
        raise ConfigError(
            f"a global batch of {B} rows cannot feed {info.world} processes; raise the batch size"
        )
    rows = torch.tensor_split(torch.arange(B), info.world)[info.rank]
    return batch.rows(rows)


def all_sum(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t)


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if not info.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.destroy_process_group()
