from __future__ import annotations

import torch

from posebh_cli.models.vit_weights import resample_pos_embed


def test_vitpose_extra_slot_is_folded_into_every_patch_token():
    pos = torch.randn(1, 1 + 2 * 3, 4)
    folded = resample_pos_embed(pos, (2, 3), "f", fold_first_slot=True)
    assert torch.equal(folded, pos[:, 1:] + pos[:, :1])


def test_cls_slot_of_timm_files_is_dropped():
    pos = torch.randn(1, 1 + 2 * 3, 4)
    assert torch.equal(resample_pos_embed(pos, (2, 3), "f"), pos[:, 1:])
