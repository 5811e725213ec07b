"""average_gradients keeps each gradient in its parameter's memory layout (one gloo process)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from posebh_cli.engine.distributed import average_gradients


def test_gradients_keep_the_parameter_layout(tmp_path):
    # A channels-last conv weight without a gradient on this rank gets zeros laid out like the
    # weight (the fused AdamW step reads both in memory order); an existing gradient is
    # averaged in place. One process stands in for "world_size 2" (its sum is halved).
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        idle = torch.nn.Parameter(torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last))
        used = torch.nn.Parameter(torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last))
        used.grad = torch.empty_like(used).copy_(torch.arange(48.0).view(4, 3, 2, 2))
        average_gradients([idle, used], world_size=2)
    finally:
        dist.destroy_process_group()
    assert idle.grad.is_contiguous(memory_format=torch.channels_last)
    assert idle.grad.abs().sum() == 0
    assert used.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(used.grad, torch.arange(48.0).view(4, 3, 2, 2) / 2)
