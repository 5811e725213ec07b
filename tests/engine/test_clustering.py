"""Prototype clustering: balanced Sinkhorn k-means, refresh, concepts, embedding sampling."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from posebh_cli.engine.clustering import (
    balanced_sinkhorn_kmeans,
    cluster_concepts,
    heatmap_locations,
    kmeans_plus_plus,
    refresh_prototypes,
    sample_embedding_map,
    type_vectors,
)
from posebh_cli.errors import PosebhError


def _blob(center: torch.Tensor, count: int, noise: float, generator: torch.Generator):
    return F.normalize(center + noise * torch.randn(count, center.numel(), generator=generator),
                       dim=1)


def _axes(dim: int) -> torch.Tensor:
    return torch.eye(dim)


def test_two_separated_blobs_give_two_balanced_clusters():
    generator = torch.Generator().manual_seed(0)
    axes = _axes(8)
    points = torch.cat([_blob(axes[0], 40, 0.05, generator), _blob(axes[1], 40, 0.05, generator)])
    segments = torch.zeros(80, dtype=torch.int64)
    result = balanced_sinkhorn_kmeans(points, segments, 1, 2, seed=1)
    first, second = result.assignment[:40], result.assignment[40:]
    assert (first == first[0]).all() and (second == second[0]).all() and first[0] != second[0]
    assert result.sizes.tolist() == [[40, 40]]
    centroid_of_first = result.centroids[0, first[0]]
    assert torch.allclose(centroid_of_first.abs(), axes[0], atol=0.05)
    assert result.similarity.min() > 0.95


def test_segments_are_clustered_independently_in_one_call():
    generator = torch.Generator().manual_seed(1)
    axes = _axes(6)
    # Segment 0: blobs on axes 0 and 1; segment 1: blobs on axes 2 and 3 (different sizes).
    points = torch.cat([_blob(axes[0], 10, 0.05, generator), _blob(axes[1], 10, 0.05, generator),
                        _blob(axes[2], 6, 0.05, generator), _blob(axes[3], 6, 0.05, generator)])
    segments = torch.tensor([0] * 20 + [1] * 12)
    result = balanced_sinkhorn_kmeans(points, segments, 2, 2, seed=0)
    assert result.sizes.tolist() == [[10, 10], [6, 6]]
    for segment, (a, b) in enumerate([(0, 1), (2, 3)]):
        found = {int(v.abs().argmax()) for v in result.centroids[segment]}
        assert found == {a, b}


def test_balance_splits_a_single_blob_evenly():
    # One tight blob and M = 2: plain k-means could leave a cluster empty; the Sinkhorn
    # assignment gives each cluster about half the points (the hard argmax of a balanced soft
    # assignment is balanced up to a few points).
    generator = torch.Generator().manual_seed(2)
    points = _blob(_axes(4)[0], 30, 0.2, generator)
    result = balanced_sinkhorn_kmeans(points, torch.zeros(30, dtype=torch.int64), 1, 2, seed=0)
    assert min(result.sizes[0].tolist()) >= 13


def test_sign_flipped_points_are_one_cluster():
    # |cos| geometry (METHOD.md §1): e and -e are the same point, and the centroid must not cancel.
    generator = torch.Generator().manual_seed(3)
    axes = _axes(5)
    blob = _blob(axes[0], 20, 0.05, generator)
    signs = torch.where(torch.arange(20) % 2 == 0, 1.0, -1.0)[:, None]
    other = _blob(axes[1], 20, 0.05, generator)
    points = torch.cat([blob * signs, other])
    result = balanced_sinkhorn_kmeans(points, torch.zeros(40, dtype=torch.int64), 1, 2, seed=0)
    assert len(set(result.assignment[:20].tolist())) == 1
    assert result.centroids[0].norm(dim=1).min() > 0.99
    assert result.similarity[:20].min() > 0.95


def test_kmeans_plus_plus_picks_one_seed_per_blob():
    generator = torch.Generator().manual_seed(4)
    axes = _axes(6)
    points = torch.cat([_blob(axes[i], 15, 0.01, generator) for i in range(3)])
    seeds = kmeans_plus_plus(points, torch.zeros(45, dtype=torch.int64), 1, 3, seed=7)
    assert {int(v.abs().argmax()) for v in seeds[0]} == {0, 1, 2}
    # Seeds are data points, and an empty segment gets zeros.
    seeds = kmeans_plus_plus(points, torch.zeros(45, dtype=torch.int64), 2, 3, seed=7)
    assert seeds[1].abs().sum() == 0
    assert all((points @ s).max() > 0.9999 for s in seeds[0])


def test_refresh_prototypes_per_type_and_keeps_empty_types():
    generator = torch.Generator().manual_seed(5)
    axes = _axes(8)
    existing = F.normalize(torch.randn(3, 2, 8, generator=generator), dim=-1)
    # Type 0: blobs on axes 0/1; type 2: blobs on axes 4/5; type 1: no sample at all.
    embeddings = torch.cat([_blob(axes[0], 12, 0.05, generator),
                            _blob(axes[1], 12, 0.05, generator),
                            _blob(axes[4], 8, 0.05, generator),
                            _blob(axes[5], 8, 0.05, generator)])
    keypoint_ids = torch.tensor([0] * 24 + [2] * 16)
    refresh = refresh_prototypes(embeddings, keypoint_ids, existing, seed=0)
    assert refresh.prototypes.shape == (3, 2, 8)
    assert refresh.empty_types == [1]
    assert torch.equal(refresh.prototypes[1], existing[1])
    assert refresh.samples.tolist() == [24, 0, 16]
    assert refresh.cluster_sizes.tolist() == [[12, 12], [0, 0], [8, 8]]
    assert {int(v.abs().argmax()) for v in refresh.prototypes[0]} == {0, 1}
    assert {int(v.abs().argmax()) for v in refresh.prototypes[2]} == {4, 5}
    assert refresh.similarity_after[0] > 0.95 and refresh.similarity_after[2] > 0.95
    assert refresh.similarity_after[0] > refresh.similarity_before[0]
    assert torch.isnan(refresh.similarity_after[1])


def test_refresh_from_existing_prototypes_converges_to_the_blobs():
    generator = torch.Generator().manual_seed(6)
    axes = _axes(4)
    embeddings = torch.cat([_blob(axes[0], 10, 0.05, generator),
                            _blob(axes[1], 10, 0.05, generator)])
    existing = F.normalize(torch.stack([axes[0] + 0.5 * axes[2], axes[1] + 0.5 * axes[3]]),
                           dim=-1)[None]  # (1, 2, 4) near the blobs, in order
    refresh = refresh_prototypes(embeddings, torch.zeros(20, dtype=torch.int64), existing,
                                 init="existing")
    assert torch.allclose(refresh.prototypes[0].abs(), axes[:2], atol=0.05)
    with pytest.raises(PosebhError, match="--init"):
        refresh_prototypes(embeddings, torch.zeros(20, dtype=torch.int64), existing, init="pca")


def test_refresh_without_embeddings_keeps_everything():
    existing = F.normalize(torch.randn(2, 3, 4), dim=-1)
    refresh = refresh_prototypes(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), existing)
    assert torch.allclose(refresh.prototypes, existing)
    assert refresh.empty_types == [0, 1]


def test_type_vectors_align_prototype_signs():
    axis = torch.tensor([1.0, 0.0, 0.0])
    prototypes = torch.stack([axis, -axis, axis])[None]  # (1, 3, 3): one type
    assert torch.allclose(type_vectors(prototypes)[0], axis)


def test_concepts_recover_a_planted_grouping_across_two_skeletons():
    # Three concepts (directions); skeleton A and B each have one keypoint per concept, listed
    # in different orders, with M = 3 noisy prototypes (and random signs) per type.
    generator = torch.Generator().manual_seed(7)
    directions = F.normalize(torch.randn(3, 16, generator=generator), dim=1)
    planted = [0, 1, 2, 2, 0, 1]  # concept of each type: A/0..2, then B/0..2
    prototypes = torch.stack([
        _blob(directions[c], 3, 0.1, generator)
        * torch.where(torch.rand(3, 1, generator=generator) < 0.5, -1.0, 1.0)
        for c in planted])
    labels = [("a", "skel_a", f"k{i}") for i in range(3)] + \
        [("b", "skel_b", f"k{i}") for i in range(3)]
    result = cluster_concepts(prototypes, 3, labels, seed=0)
    assignment = result.assignment.tolist()
    # Same planted concept <=> same found concept (the labels are a permutation).
    for i, j in itertools.combinations(range(6), 2):
        assert (assignment[i] == assignment[j]) == (planted[i] == planted[j])
    assert result.sizes.tolist() == [2, 2, 2]
    concepts = result.report["concepts"]
    assert all(c["skeletons"] == ["skel_a", "skel_b"] for c in concepts)
    nose = next(c for c in concepts if any(m["dataset"] == "a" and m["keypoint"] == "k0"
                                           for m in c["members"]))
    assert {(m["dataset"], m["keypoint"]) for m in nose["members"]} == {("a", "k0"), ("b", "k1")}
    assert all(m["similarity"] > 0.9 for c in concepts for m in c["members"])


def test_concepts_reject_bad_counts():
    prototypes = F.normalize(torch.randn(4, 2, 3), dim=-1)
    labels = [("d", "s", str(i)) for i in range(4)]
    for bad in (0, 5):
        with pytest.raises(PosebhError, match="--concepts"):
            cluster_concepts(prototypes, bad, labels)


def test_sampling_a_constructed_embedding_map_at_known_locations():
    height, width = 6, 5
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32), indexing="ij")
    # Channel 0 = x, channel 1 = y, channel 2 = x * y (not linear: exact only on pixel centres).
    embedding_map = torch.stack([xs, ys, xs * ys])[None]  # (1, 3, h, w)
    points = torch.tensor([[[0.0, 0.0], [4.0, 5.0], [2.5, 1.5], [3.0, 2.0]]])  # (1, 4, 2)
    sampled = sample_embedding_map(embedding_map, points)  # (1, 4, 3)
    assert sampled.shape == (1, 4, 3)
    assert torch.allclose(sampled[0, :, :2], points[0], atol=1e-5)  # bilinear is exact on x, y
    assert sampled[0, 0, 2] == 0 and torch.isclose(sampled[0, 1, 2], torch.tensor(20.0))
    assert torch.isclose(sampled[0, 3, 2], torch.tensor(6.0))
    # Midway between four pixels: the mean of their x * y values (2*1 + 3*1 + 2*2 + 3*2) / 4.
    assert torch.isclose(sampled[0, 2, 2], torch.tensor(3.75))


def test_heatmap_locations_invert_the_codec_stride():
    crop_points = torch.tensor([[[0.0, 0.0], [47.0, 63.0], [32.0, 16.0]]])  # (x, y)
    # UDP, input (64, 48) -> heatmap (16, 12): stride (47/11, 63/15); first/last centres match.
    udp = heatmap_locations(crop_points, (64, 48), (16, 12), "udp")
    assert torch.allclose(udp[0, 0], torch.zeros(2))
    assert torch.allclose(udp[0, 1], torch.tensor([11.0, 15.0]))
    assert torch.allclose(udp[0, 2], torch.tensor([32.0 * 11 / 47, 16.0 * 15 / 63]))
    msra = heatmap_locations(crop_points, (64, 48), (16, 12), "msra")
    assert torch.allclose(msra[0, 2], torch.tensor([8.0, 4.0]))
