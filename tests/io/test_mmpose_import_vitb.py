"""A ViT-B sized import with the exact shapes of the released ViTPose++-B / PoseBH-B files
(random weights): it must load in seconds; the time is printed, not asserted."""

from __future__ import annotations

import time

import pytest
import torch
from _mmpose_synthetic import make_state, save_checkpoint

from posebh_cli.io.mmpose_run import load_mmpose_model, write_imported_run

REFERENCE_KEYPOINTS = (17, 14, 16, 17, 17, 133)  # COCO, AIC, MPII, AP-10K, APT-36K, WholeBody


@pytest.mark.slow
def test_vitb_sized_import_of_reference_shapes(tmp_path, capsys):
    """6 experts of P = 192 rows, 6 heads (256 deconv filters), a 214 x 3 x 64 prototype table."""
    state = make_state(dim=768, depth=12, grid=(16, 12), keypoints=REFERENCE_KEYPOINTS,
                       experts=6, expert_dim=192, head_channels=256, proto=(3, 64, 256), seed=1,
                       exact=False)
    path = tmp_path / "posebh_vitb.pth"
    save_checkpoint(path, state, meta={"config": {"lr": 1e-3}})
    size_mb = path.stat().st_size / 2**20
    start = time.perf_counter()
    imported = load_mmpose_model(path, arch="vitb")
    loaded = time.perf_counter() - start
    write_imported_run(imported, tmp_path / "run")
    total = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[ViT-B import] {size_mb:.0f} MB checkpoint: model built and loaded in "
              f"{loaded:.1f} s; run directory written after {total:.1f} s")
    assert imported.unmapped == [] and imported.initialised == []
    model = imported.model
    assert list(model.heads) == ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]
    assert model.backbone.blocks[0].mlp.expert_weight.shape == (6, 192, 3072)
    assert model.backbone.blocks[0].mlp.fc2.weight.shape == (576, 3072)
    assert model.prototype_table.prototypes.shape == (214, 3, 64)
    assert torch.equal(model.backbone.blocks[11].mlp.expert_weight[5],
                       state["backbone.blocks.11.mlp.experts.5.weight"])
    expected = state["backbone.pos_embed"][:, 1:] + state["backbone.pos_embed"][:, :1]
    assert torch.equal(model.backbone.pos_embed, expected)
    assert torch.equal(model.heads["coco_wholebody"].final.weight,
                       state["associate_keypoint_heads.4.final_layer.weight"])
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 500 * 2**20
