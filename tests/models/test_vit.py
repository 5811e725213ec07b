from __future__ import annotations

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.models.vit import PoseViT, ViTConfig, layer_id, merge_expert
from posebh_cli.models.vit_weights import load_backbone_weights


@pytest.mark.parametrize("arch,dim", [("tiny", 192), ("small", 384)])
def test_backbone_output_is_token_grid_at_256x192(arch: str, dim: int) -> None:
    model = PoseViT(ViTConfig(arch, (256, 192), 16)).eval()
    out = model(torch.randn(1, 3, 256, 192))
    assert out.shape == (1, dim, 16, 12)
    assert model.patch_embed.proj.padding == (2, 2)
    assert model.pos_embed.shape == (1, 192, dim)  # no cls slot


def test_base_parameter_count_on_meta_device() -> None:
    with torch.device("meta"):
        model = PoseViT(ViTConfig("base"))
    count = sum(p.numel() for p in model.parameters())
    # 12 blocks x 7,087,872 + patch conv 590,592 + pos 192*768 + final LN 1,536
    assert count == 12 * 7_087_872 + 590_592 + 192 * 768 + 1_536
    assert isinstance(model.blocks[0].drop_path1, torch.nn.Identity)  # rate 0 in block 0
    assert abs(model.blocks[-1].drop_path1.drop_prob - 0.3) < 1e-6


def _moe_model() -> PoseViT:
    torch.manual_seed(0)
    return PoseViT(ViTConfig("tiny", (64, 48), 16, num_experts=3, expert_dim=32)).eval()


def test_moe_routes_each_sample_to_its_dataset_expert() -> None:
    model = _moe_model()
    images = torch.randn(3, 3, 64, 48)
    routed = model(images, torch.tensor([2, 0, 1]))
    for i, d in enumerate([2, 0, 1]):
        alone = model(images[i:i + 1], torch.tensor([d]))
        torch.testing.assert_close(routed[i:i + 1], alone, atol=1e-5, rtol=1e-5)
    other = model(images[:1], torch.tensor([1]))
    assert not torch.allclose(other, routed[:1], atol=1e-4)


def test_merge_expert_equals_moe_output_for_that_dataset() -> None:
    model = _moe_model()
    images = torch.randn(2, 3, 64, 48)
    for d in range(3):
        plain = merge_expert(model, d).eval()
        assert plain.config.num_experts == 0
        expected = model(images, torch.full((2,), d))
        torch.testing.assert_close(plain(images), expected, atol=1e-5, rtol=1e-5)


def test_moe_under_bf16_autocast_and_compile() -> None:
    model = _moe_model()
    images = torch.randn(2, 3, 64, 48)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, torch.tensor([0, 2]))
    assert out.dtype in (torch.bfloat16, torch.float32) and torch.isfinite(out).all()


@pytest.mark.slow
def test_moe_torch_compile_matches_eager() -> None:
    model = _moe_model()
    images = torch.randn(2, 3, 64, 48)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(images, torch.tensor([1, 2])),
                               model(images, torch.tensor([1, 2])), atol=1e-4, rtol=1e-4)


def test_layer_id_for_layerwise_decay() -> None:
    assert layer_id("patch_embed.proj.weight", 12) == 0
    assert layer_id("backbone.pos_embed", 12) == 0
    assert layer_id("blocks.0.attn.qkv.weight", 12) == 1
    assert layer_id("backbone.blocks.11.mlp.fc2.bias", 12) == 12
    assert layer_id("backbone.norm.weight", 12) == 13
    assert layer_id("heads.coco.final.weight", 12) == 13


def test_load_timm_style_weights_drops_cls_and_interpolates_pos_embed(tmp_path) -> None:
    from safetensors.torch import save_file

    model = PoseViT(ViTConfig("tiny", (64, 48), 16))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["blocks.0.attn.qkv.weight"] = torch.full_like(state["blocks.0.attn.qkv.weight"], 0.5)
    # timm / MAE layout: cls token, a square 4x4 grid with a cls slot, a classifier head.
    state["pos_embed"] = torch.randn(1, 1 + 16, 192)
    state["cls_token"] = torch.zeros(1, 1, 192)
    state["head.weight"] = torch.zeros(10, 192)
    state["decoder_embed.weight"] = torch.zeros(4, 4)
    del state["norm.bias"]
    state["mystery"] = torch.zeros(3)
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    report = load_backbone_weights(model, path)
    assert report.missing == ["norm.bias"]
    assert report.unexpected == ["mystery"]
    assert set(report.ignored) == {"cls_token", "head.weight", "decoder_embed.weight"}
    assert report.loaded == len(model.state_dict()) - 1  # all but the deleted norm.bias
    assert report.summary(path) == (
        f"backbone weights {path}: {report.loaded} tensors loaded; 1 missing (kept at init): "
        "norm.bias; 1 unexpected (not used): mystery; 3 ignored: cls_token, "
        "decoder_embed.weight, head.weight")
    assert model.pos_embed.shape == (1, 12, 192)
    assert torch.all(model.blocks[0].attn.qkv.weight == 0.5)


def test_load_vitpose_plus_expert_keys(tmp_path) -> None:
    model = _moe_model()
    state = {"backbone." + k: v for k, v in model.state_dict().items() if "expert_" not in k}
    for e in range(3):
        state[f"backbone.blocks.0.mlp.experts.{e}.weight"] = torch.full((32, 768), float(e))
        state[f"backbone.blocks.0.mlp.experts.{e}.bias"] = torch.full((32,), float(e))
    state["backbone.last_norm.weight"] = state.pop("backbone.norm.weight") * 0 + 2
    path = tmp_path / "w.pth"
    torch.save({"state_dict": state}, path)
    report = load_backbone_weights(model, path)
    assert all(".expert_" in k for k in report.missing) and len(report.missing) == 2 * 5
    assert model.blocks[0].mlp.expert_weight[2].unique().tolist() == [2.0]
    assert torch.all(model.norm.weight == 2)


def test_non_state_dict_file_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "w.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(PosebhError, match="not a state dict"):
        load_backbone_weights(PoseViT(ViTConfig("tiny", (64, 48), 16)), path)
    garbage = tmp_path / "g.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(PosebhError, match="cannot read"):
        load_backbone_weights(PoseViT(ViTConfig("tiny", (64, 48), 16)), garbage)


def test_unknown_arch_is_a_user_error() -> None:
    with pytest.raises(PosebhError, match="unknown backbone"):
        PoseViT(ViTConfig("gigantic"))
