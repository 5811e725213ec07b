"""The from-scratch options of the ViT: the convolutional stem and the sin-cos position start."""

from __future__ import annotations

import math

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.models.conv_stem import ConvStem
from posebh_cli.models.pos_embed import sincos_2d
from posebh_cli.models.vit import PoseViT, ViTConfig, merge_expert


def test_sincos_table_matches_hand_computed_entries() -> None:
    table = sincos_2d((2, 3), 8)  # dim / 4 = 2 frequencies: 1 and 10000^(-1/2) = 0.01
    assert table.shape == (6, 8)
    y, x = 1, 2  # row-major token 1 * 3 + 2
    expected = [math.sin(y), math.sin(0.01 * y), math.cos(y), math.cos(0.01 * y),
                math.sin(x), math.sin(0.01 * x), math.cos(x), math.cos(0.01 * x)]
    assert table[5].tolist() == pytest.approx(expected, abs=1e-7)
    assert table[0].tolist() == pytest.approx([0, 0, 1, 1, 0, 0, 1, 1])


def test_sincos_needs_a_width_divisible_by_four() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d((2, 2), 6)


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
    assert torch.equal(model.pos_embed[0], sincos_2d((4, 3), 192))
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

