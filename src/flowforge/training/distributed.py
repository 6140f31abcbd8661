"""torch.distributed glue: start from torchrun's environment, shard batches,
write on rank 0 only. The same code path runs single-process (world size 1).

Sharding: every rank draws the same global batch (same seed, same noise) and
takes rows ``rank::world`` of it; DDP averages the gradients, so a run on N
processes follows the single-process run with the same global batch up to
floating-point summation order (the role of ``DistributedSampler``, made
exact per batch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistInfo", "init_from_env", "shutdown", "info"]


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

    def shard(self, x: Tensor | None) -> Tensor | None:
        """This rank's rows ``rank::world`` of a global batch."""
        if x is None or not self.active:
            return x
        return x[self.rank :: self.world]

    def mean(self, value: float, device: torch.device) -> float:
        """Average of a float over ranks."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t) / self.world


def info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_from_env(device: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1): gloo on
    CPU, nccl on CUDA. Returns the info and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return info(), device
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return info(), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
