from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.losses.css import CssInput, css_loss
from posebh_cli.losses.keypoint import multi_head_keypoint_loss
from posebh_cli.losses.prototype import prototype_heatmap_loss, prototype_loss
from posebh_cli.models.posebh import build_model
from posebh_cli.models.prototype_learning import DatasetPixels, learn_prototypes
from posebh_cli.models.prototypes import similarity_to_heatmaps

DATASETS = [("coco", 17), ("ap10k", 17), ("hand", 21)]


def _cfg(**overrides) -> SimpleNamespace:
    values = dict(
        backbone="tiny", input_size=(64, 48), heatmap_size=(16, 12), patch_size=16, moe=True,
        expert_dim=None, drop_path=None, head_channels=16, head_deconvs=2,
        embed_head_channels=16, embedding_dim=8, prototypes_per_type=3, seed=0,
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def test_forward_routes_heads_to_their_samples() -> None:
    model = build_model(_cfg(), DATASETS).eval()
    out = model(torch.randn(4, 3, 64, 48), torch.tensor([2, 0, 2, 0]))
    assert out["features"].shape == (4, 192, 4, 3)
    assert out["embeddings"].shape == (4, 8, 16, 12)
    assert set(out["heatmaps"]) == {"coco", "hand"}
    assert out["heatmaps"]["hand"].shape == (2, 21, 16, 12)
    assert out["sample_indices"]["coco"].tolist() == [1, 3]
    torch.testing.assert_close(model.run_head(0, out["features"][[1, 3]]), out["heatmaps"]["coco"])
    assert model.type_ids(2).tolist() == list(range(34, 55))
    assert model.prototype_table.prototypes.shape == (55, 3, 8)


def test_batch_sorted_by_dataset_gives_the_same_outputs_as_any_order() -> None:
    # Sorted: MoE experts and heads run on row slices; interleaved: one-hot experts and gathers.
    model = build_model(_cfg(), DATASETS).eval()
    images = torch.randn(5, 3, 64, 48)
    sorted_idx = torch.tensor([0, 0, 1, 2, 2])
    order = torch.tensor([0, 3, 1, 2, 4])  # dataset order 0, 2, 0, 1, 2: each dataset's own order
    with torch.no_grad():
        by_slices = model(images, sorted_idx)
        gathered = model(images[order], sorted_idx[order])
    assert gathered["sample_indices"]["hand"].tolist() == [1, 4]
    for name in ("coco", "ap10k", "hand"):
        torch.testing.assert_close(by_slices["heatmaps"][name], gathered["heatmaps"][name],
                                   atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(by_slices["features"], gathered["features"][torch.argsort(order)],
                               atol=1e-5, rtol=1e-4)


def test_frozen_parts_get_no_grads_and_stay_in_eval() -> None:
    model = build_model(_cfg(), DATASETS)
    model.set_frozen(["backbone", "keypoint_heads"])
    model.train()
    assert not model.heads.training and not model.backbone.training
    assert model.embedding_head.training
    out = model(torch.randn(2, 3, 64, 48), torch.tensor([0, 1]))
    loss = out["embeddings"].square().mean() + sum(h.sum() for h in out["heatmaps"].values())
    assert out["heatmaps"]["coco"].requires_grad is False
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.heads.parameters())
    assert any(p.grad is not None for p in model.embedding_head.parameters())
    with pytest.raises(PosebhError, match="unknown model part"):
        model.set_frozen(["neck"])


def test_full_forward_backward_tiny_three_datasets_bf16() -> None:
    torch.manual_seed(0)
    model = build_model(_cfg(), DATASETS).train()
    images = torch.randn(6, 3, 64, 48)
    dataset_idx = torch.tensor([0, 1, 2, 0, 1, 2])
    heatmaps = torch.zeros(6, 21, 16, 12)
    weights = torch.zeros(6, 21)
    for b, (_, k) in enumerate(DATASETS * 2):
        heatmaps[b, :k, 5:8, 4:7] = 0.5
        heatmaps[b, :k, 6, 5] = 1.0
        weights[b, :k] = 1.0
    table = model.prototype_table
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, dataset_idx)
        kpt, _ = multi_head_keypoint_loss(out["heatmaps"], out["sample_indices"], heatmaps,
                                          weights)
        groups, similarities, phm_loss, css_inputs = [], [], 0.0, []
        for d, (name, k) in enumerate(DATASETS):
            index = out["sample_indices"][name]
            similarity = table.similarity(out["embeddings"][index], model.type_ids(d))
            phm_loss = phm_loss + prototype_heatmap_loss(
                similarity_to_heatmaps(similarity), heatmaps[index, :k], weights[index, :k]
            )
            groups.append(DatasetPixels(int(model.type_offsets[d]), similarity,
                                        out["embeddings"][index], heatmaps[index, :k],
                                        weights[index, :k]))
            similarities.append(similarity)
            others = (dataset_idx != d).nonzero().squeeze(1)
            css_inputs.append(CssInput(
                int(model.type_offsets[d]), model.run_head(d, out["features"][others]),
                table.similarity(out["embeddings"][others], model.type_ids(d)),
                out["embeddings"][others],
            ))
        learned = learn_prototypes(table.prototypes, groups, seed=0)
        proto = prototype_loss(similarities, learned.targets)
        css = css_loss(css_inputs, table.prototypes, sinkhorn_seed=0)
        total = kpt + proto.total + phm_loss + css.total
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert model.backbone.blocks[0].mlp.expert_weight.grad.abs().sum() > 0
    assert all(model.heads[n].final.weight.grad is not None for n, _ in DATASETS)
    assert model.embedding_head.final.weight.grad is not None
    before = table.prototypes.clone()
    table.set_prototypes(learned.prototypes)
    assert not torch.equal(before, table.prototypes)
    assert int(learned.pixels_labelled) > 0


def test_heatmap_size_mismatch_is_a_user_error() -> None:
    with pytest.raises(PosebhError, match="heatmap_size"):
        build_model(_cfg(heatmap_size=(64, 48)), DATASETS)


def test_forward_can_skip_the_embedding_head() -> None:
    model = build_model(_cfg(), DATASETS).eval()
    out = model(torch.randn(2, 3, 64, 48), torch.tensor([0, 1]), with_embeddings=False)
    assert out["embeddings"] is None and set(out["heatmaps"]) == {"coco", "ap10k"}


def test_softmax_heads_decode_from_probabilities_in_inference() -> None:
    from posebh_cli.engine.inference import InferenceSettings, predict_heatmaps

    model = build_model(_cfg(), DATASETS, head_softmax_sigma=1.0).eval()
    images = torch.randn(2, 3, 64, 48)
    settings = InferenceSettings(dataset_index=1, flip_index=list(range(17)), udp=True,
                                 heatmap_decoder="dark_udp", flip_test=False)
    maps = predict_heatmaps(model, images, settings)
    with torch.no_grad():
        logits = model.run_head(1, model.backbone(images, torch.tensor([1, 1])))
    expected = logits.flatten(2).softmax(-1).view_as(logits) * 2 * torch.pi
    torch.testing.assert_close(maps, expected)
    assert (maps > 0).all()  # a peak everywhere, even where every logit is negative
