from __future__ import annotations

import pytest
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


def _log_gaussian(x: float, y: float, sigma: float, size=(32, 24)) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    return -((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)


def test_softmax_head_maps_logits_back_to_the_target_scale() -> None:
    # Logits that are a log-Gaussian shifted far below zero: the softmax removes the shift and
    # x 2 pi sigma^2 restores the unit-peak Gaussian the loss was trained against.
    head = HeatmapHead(8, 1, channels=4, softmax_sigma=1.5)
    logits = (_log_gaussian(10.0, 12.0, 1.5) - 40.0)[None, None]
    maps = head.to_heatmaps(logits)
    assert maps.dtype == torch.float32
    assert maps.max().item() == pytest.approx(1.0, abs=1e-3)
    assert divmod(int(maps.flatten().argmax()), 24) == (12, 10)


def test_mse_head_maps_are_its_output() -> None:
    head = HeatmapHead(8, 2, channels=4)
    output = torch.randn(1, 2, 32, 24)
    assert torch.equal(head.to_heatmaps(output), output)
    features = torch.randn(1, 8, 8, 6)
    assert torch.equal(head.heatmaps(features), head(features))
