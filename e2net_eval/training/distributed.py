"""Process-group helpers for DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m e2net_eval train ...`` sets RANK, WORLD_SIZE and
LOCAL_RANK; the trainer then joins a process group (NCCL on CUDA, gloo on the CPU), each
process takes its share of every global batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def dist_info() -> DistInfo:
    """Rank, world size and local rank from the environment (torchrun) or an open group."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local)
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), local)


def init_group(info: DistInfo, device: torch.device) -> bool:
    """Join the process group when running distributed; True when this call opened it."""
    if not info.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world)
    return True


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum a few floats over all processes (identity when not distributed)."""
    if not (info.enabled and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
