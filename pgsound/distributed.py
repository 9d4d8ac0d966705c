"""Several processes, one model: torchrun and gradient all-reduce (book: chapter 7, The training loop).

Launched by ``torchrun --nproc_per_node N -m pgsound.cli train ...``, each process trains on its share of the
global minibatch. Gradients are averaged across processes after each backward pass (like stylegan2-ada, without
wrapping the networks in DistributedDataParallel, which does not support the gradient penalty's double
backward well); so every process takes the same optimizer step and the weights stay identical. Process 0 alone
writes checkpoints, logs and samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_from_environment(device: torch.device) -> ProcessGroup:
    """Join the process group that torchrun describes in the environment; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


def split_batch(global_batch: int, group: ProcessGroup) -> int:
    """Each process's share of the global minibatch; it must divide evenly."""
    if global_batch % group.world_size:
        raise ValueError(
            f"the minibatch {global_batch} does not split evenly across {group.world_size} processes"
        )
    return global_batch // group.world_size


def average_gradients(module: nn.Module, group: ProcessGroup) -> None:
    """Average the gradients of ``module`` across processes in one flat all-reduce."""
    if not group.active:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= group.world_size
    torch._foreach_copy_(grads, [chunk.view_as(g) for chunk, g in zip(flat.split([g.numel() for g in grads]), grads)])


def average_tensor(value: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """The mean of ``value`` across processes (for tick statistics)."""
    if group.active:
        value = value.clone()
        dist.all_reduce(value)
        value /= group.world_size
    return value
