"""batch_statistics_only: training-mode BN normalises with batch statistics, updates nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from posebh_cli.models.norm_statistics import batch_statistics_only


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.ReLU(), nn.BatchNorm2d(3))
    with torch.no_grad():  # running statistics far from any batch's, so a mix-up shows
        for norm in (model[1], model[3]):
            norm.running_mean.fill_(5.0)
            norm.running_var.fill_(9.0)
    return model


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.clone() for name, b in model.named_buffers()}


def test_training_mode_uses_batch_statistics_and_keeps_running_ones():
    model = _model().train()
    before = _buffers(model)
    x = torch.randn(4, 2, 5, 3)
    with batch_statistics_only(model):
        y = model[1](model[0](x))
    z = model[0](x)  # (B, C, H, W): per-channel batch mean and biased variance, eps 1e-5
    mean, var = z.mean(dim=(0, 2, 3), keepdim=True), z.var(dim=(0, 2, 3), unbiased=False,
                                                           keepdim=True)
    torch.testing.assert_close(y, (z - mean) / torch.sqrt(var + 1e-5))
    after = _buffers(model)
    for name in before:
        assert torch.equal(before[name], after[name]), name
    assert all(m.track_running_stats for m in (model[1], model[3]))
    model(x)  # outside the block the usual update is back
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])
    assert int(model[1].num_batches_tracked) == 1


def test_gradients_flow_through_the_batch_statistics():
    model = _model().train()
    x = torch.randn(4, 2, 5, 3, requires_grad=True)
    with batch_statistics_only(model):
        model(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_eval_mode_still_reads_the_running_statistics():
    model = _model().eval()
    x = torch.randn(2, 2, 4, 4)
    expected = model(x)
    with batch_statistics_only(model):
        torch.testing.assert_close(model(x), expected)


def test_restored_after_an_exception():
    model = _model().train()
    with pytest.raises(RuntimeError), batch_statistics_only(model):
        raise RuntimeError("boom")
    assert all(m.track_running_stats for m in (model[1], model[3]))
