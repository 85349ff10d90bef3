"""Data parallelism with the same command: under ``torchrun`` each process takes a slice of every
global batch and DDP averages the gradients (gloo for CPU tensors, nccl for CUDA tensors)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env() -> Rank:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Rank()
    if not dist.is_initialized():
        # One group serves either device: --device is read after the group exists (dipn train).
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size())


def barrier(rank: Rank) -> None:
    if rank.world > 1:
        dist.barrier()


def shutdown(rank: Rank) -> None:
    if rank.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, rank: Rank, device: torch.device) -> torch.nn.Module:
    if rank.world == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
