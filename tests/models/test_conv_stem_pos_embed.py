"""The from-scratch options of the ViT: the convolutional stem and the sin-cos position start."""

from __future__ import annotations

import math

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.models.conv_stem import ConvStem
from posebh_cli.models.vit import PoseViT, ViTConfig, merge_expert


def _sincos_entry(y: int, x: int, dim: int) -> list[float]:
    """MAE's 2-D sin-cos row of token (y, x) in timm's order [sin y, sin x, cos y, cos x]."""
    omegas = [10000 ** (-i / (dim // 4)) for i in range(dim // 4)]
    return ([math.sin(y * w) for w in omegas] + [math.sin(x * w) for w in omegas]
            + [math.cos(y * w) for w in omegas] + [math.cos(x * w) for w in omegas])


def test_stem_keeps_the_patch_grid_and_shape() -> None:
    stem = ConvStem((8, 16, 32, 64), 96)
    assert stem.stride == 16
    assert stem(torch.randn(2, 3, 128, 96)).shape == (2, 96, 8, 6)
    convs = [m for m in stem.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 4 + [(1, 1)]


def test_backbone_with_stem_and_sincos_start() -> None:
    config = ViTConfig("tiny", (64, 48), 16, num_experts=3, expert_dim=32,
                       stem_channels=(8, 16, 32, 64), pos_embed_init="sincos")
    torch.manual_seed(0)
    model = PoseViT(config).eval()
    assert isinstance(model.patch_embed.proj, ConvStem)
    table = model.pos_embed[0]  # (4 * 3, 192): a 64x48 input at patch 16
    assert table.shape == (12, 192)
    assert table[0].tolist() == pytest.approx(_sincos_entry(0, 0, 192), abs=1e-6)
    assert table[1 * 3 + 2].tolist() == pytest.approx(_sincos_entry(1, 2, 192), abs=1e-6)
    assert table[11].tolist() == pytest.approx(_sincos_entry(3, 2, 192), abs=1e-6)
    assert model.pos_embed.requires_grad  # a starting value, still learned
    images, idx = torch.randn(2, 3, 64, 48), torch.tensor([0, 2])
    out = model(images, idx)
    assert out.shape == (2, 192, 4, 3)
    # Splitting an expert out keeps the stem: the plain model equals the MoE one on dataset 2.
    plain = merge_expert(model, 2)
    torch.testing.assert_close(plain(images[1:]), out[1:], rtol=1e-5, atol=1e-5)


def test_default_backbone_keeps_vitpose_patch_conv_and_random_positions() -> None:
    model = PoseViT(ViTConfig("tiny", (64, 48), 16))
    assert isinstance(model.patch_embed.proj, torch.nn.Conv2d)
    assert model.pos_embed.std() < 0.05  # timm's trunc-normal(0.02), not the sin-cos table


def test_stem_depth_must_match_patch_size() -> None:
    with pytest.raises(PosebhError, match=r"model.stem_channels \[8, 16, 32\].*patch_size is 16"):
        PoseViT(ViTConfig("tiny", (64, 48), 16, stem_channels=(8, 16, 32)))

