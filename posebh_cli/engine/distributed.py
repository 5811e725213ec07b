"""torch.distributed under `torchrun` (no launcher of our own): init, rank, gradient averaging."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (NCCL on GPU, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def average_gradients(parameters: list[torch.nn.Parameter], world_size: int) -> None:
    """Average the gradients of `parameters` across ranks in ONE collective.

    Parameters without a gradient on this rank (a head whose dataset had no sample here)
    contribute zeros, so every rank applies the same update (what DDP would do; done by hand
    because stages change which parameters train, which DDP cannot follow).
    """
    if world_size <= 1 or not parameters:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                      for p in parameters])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p in parameters:
        n = p.numel()
        grad = flat[offset:offset + n].view_as(p).to(p.dtype)
        if p.grad is None:
            # In the parameter's memory layout (channels-last convs), as autograd's gradients
            # are: the fused optimizer step reads gradient and parameter memory in one order.
            p.grad = torch.empty_like(p).copy_(grad)
        else:
            p.grad.copy_(grad)
        offset += n


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
