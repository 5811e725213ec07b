"""Channels-last and pixels-first layouts: same values as the plain layouts, known answers."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from posebh_cli.models.posebh import build_model, select_samples
from posebh_cli.models.prototype_learning import predicted_types
from posebh_cli.models.prototypes import PrototypeTable, similarity_to_heatmaps


def test_predicted_types_known_answer_with_ties_and_clamp() -> None:
    # One sample, K = 3 types, M = 2, three pixels.
    similarity = torch.zeros(1, 3, 2, 1, 3)
    similarity[0, 2, 1, 0, 0] = 0.8  # pixel 0: type 2 (its second prototype) wins
    similarity[0, 0, 0, 0, 0] = 0.5
    similarity[0, 1, 0, 0, 1] = 0.6  # pixel 1: types 1 and 2 tie at 0.6 -> the first, 1
    similarity[0, 2, 1, 0, 1] = 0.6
    similarity[0, 2, 0, 0, 2] = 1.0  # pixel 2: 1.0 and 0.99995 both clamp to 1 - 1e-4 -> 0
    similarity[0, 0, 1, 0, 2] = 0.99995
    assert predicted_types(similarity).tolist() == [[[2, 1, 0]]]
    expected = similarity_to_heatmaps(similarity).argmax(dim=1)
    assert torch.equal(predicted_types(similarity), expected)


def test_predicted_types_matches_argmax_of_prototype_heatmaps_in_both_layouts() -> None:
    generator = torch.Generator().manual_seed(0)
    table = PrototypeTable(9, 3, 8, seed=1)
    embeddings = torch.randn(4, 8, 6, 5, generator=generator)
    ids = torch.tensor([2, 3, 4, 5, 6])
    for layout in (torch.contiguous_format, torch.channels_last):
        similarity = table.similarity(embeddings.contiguous(memory_format=layout), ids)
        expected = similarity_to_heatmaps(similarity.contiguous()).argmax(dim=1)
        assert torch.equal(predicted_types(similarity), expected)


def test_similarity_values_do_not_depend_on_the_embedding_layout() -> None:
    table = PrototypeTable(5, 2, 6, seed=3)
    embeddings = torch.randn(3, 6, 4, 7, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([0, 4])
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    expected = torch.einsum("bfhw,tmf->btmhw", unit, table.prototypes[ids]).abs()
    for layout in (torch.contiguous_format, torch.channels_last):
        got = table.similarity(embeddings.contiguous(memory_format=layout), ids)
        assert got.shape == (3, 2, 2, 4, 7)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_select_samples_keeps_channels_last_and_values() -> None:
    maps = torch.arange(5 * 3 * 2 * 4, dtype=torch.float32).view(5, 3, 2, 4)
    index = torch.tensor([4, 1, 1])
    channels_last = maps.contiguous(memory_format=torch.channels_last)
    picked = select_samples(channels_last, index)
    assert picked.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(picked, maps.index_select(0, index))
    assert torch.equal(select_samples(maps, index), maps.index_select(0, index))


def test_backbone_output_is_a_channels_last_view_of_the_tokens() -> None:
    cfg = SimpleNamespace(backbone="tiny", input_size=(64, 48), heatmap_size=(16, 12),
                          patch_size=16, moe=True, expert_dim=None, drop_path=None,
                          head_channels=16, head_deconvs=2, embed_head_channels=16,
                          embedding_dim=8, prototypes_per_type=3, seed=0)
    model = build_model(cfg, [("a", 3), ("b", 4)]).eval()
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        features = model.backbone(images, torch.tensor([0, 1]))
    assert features.is_contiguous(memory_format=torch.channels_last)
    head_weight = model.heads["a"].deconv[0].weight
    assert head_weight.is_contiguous(memory_format=torch.channels_last)
