from __future__ import annotations

import torch

from posebh_cli.models.heads import EmbeddingHead, HeatmapHead
from posebh_cli.models.prototypes import PHM_MAX, PHM_MIN, PrototypeTable


def test_heatmap_head_upsamples_4x_with_vitpose_init() -> None:
    head = HeatmapHead(32, 17, channels=16)
    assert head(torch.randn(2, 32, 16, 12)).shape == (2, 17, 64, 48)
    assert head.final.weight.std() < 0.01 and torch.all(head.final.bias == 0)
    assert head.deconv[0].bias is None


def test_embedding_head_shape() -> None:
    head = EmbeddingHead(32, channels=16, embed_dim=8)
    assert head(torch.randn(2, 32, 8, 6)).shape == (2, 8, 32, 24)


def test_prototype_table_is_unit_and_similarity_is_abs_cosine() -> None:
    table = PrototypeTable(5, 3, 4, seed=1)
    assert torch.allclose(table.prototypes.norm(dim=-1), torch.ones(5, 3))
    assert torch.equal(table.prototypes, PrototypeTable(5, 3, 4, seed=1).prototypes)
    table.set_prototypes(torch.eye(4)[None, :3].repeat(5, 1, 1))
    embeddings = torch.zeros(1, 4, 1, 2)
    embeddings[0, :, 0, 0] = torch.tensor([-2.0, 0.0, 0.0, 0.0])  # |cos| to e0 = 1
    embeddings[0, :, 0, 1] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # orthogonal to all three
    sim = table.similarity(embeddings, torch.tensor([4]))
    assert sim.shape == (1, 1, 3, 1, 2)
    torch.testing.assert_close(sim[0, 0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    phm = table.heatmaps(embeddings, torch.tensor([4]))
    torch.testing.assert_close(phm[0, 0, 0], torch.tensor([PHM_MAX, PHM_MIN]))


def test_prototype_heatmaps_in_range_and_fp32_under_autocast() -> None:
    table = PrototypeTable(6, 3, 8)
    embeddings = torch.randn(2, 8, 5, 4, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phm = table.heatmaps(embeddings, torch.tensor([0, 5]))
    assert phm.dtype == torch.float32 and phm.shape == (2, 2, 5, 4)
    assert phm.min() >= PHM_MIN and phm.max() <= PHM_MAX
