"""Prototype clustering: keypoint embeddings of a dataset -> a fresh prototype block, and the
whole prototype table -> shared "joint concepts" across skeletons.

Three steps (the `posebh cluster` command wires them):
1. `extract_keypoint_embeddings`: run backbone + embedding head on the crops of a split and
   sample the embedding map bilinearly at each labelled keypoint's heatmap location -> (N, F)
   with the keypoint's global type id.
2. `refresh_prototypes`: per keypoint type, balanced Sinkhorn k-means with M centroids. The
   assignment of every type is ONE `segmented_sinkhorn` call (segment = keypoint type, the same
   balanced assignment the training uses, METHOD.md §2 step 3) and the centroid update is the
   normalised mean of the assigned embeddings (`momentum_update_prototypes` with momentum 0).
3. `cluster_concepts`: the J type vectors (mean of each type's M prototypes) clustered the same
   way into C concepts (a single segment), so each concept receives about J / C types.

Geometry: the model scores a pixel against a prototype with |cos| (METHOD.md §1), so e and -e
are the same point. Clustering uses |cos| as similarity and flips each vector onto the side of
its centroid before averaging (the mean of +e and -e would otherwise cancel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from posebh_cli.errors import PosebhError
from posebh_cli.ops import (
    SINKHORN_EPS,
    SINKHORN_ITERS,
    momentum_update_prototypes,
    segmented_sinkhorn,
)

INIT_METHODS = ("kmeans++", "existing")


# ----- 1. embeddings at labelled keypoints -----
@dataclass
class KeypointEmbeddings:
    """Embeddings sampled at labelled keypoints of one dataset split.

    embeddings: (N, F) fp32 unit vectors; type_ids: (N,) int64 global keypoint type ids;
    keypoint_ids: (N,) int64 keypoint index within the skeleton; instances: (N,) int64 row of
    the instance in the split's table. num_instances: crops that were run.
    """

    embeddings: Tensor
    type_ids: Tensor
    keypoint_ids: Tensor
    instances: Tensor
    num_instances: int


def heatmap_locations(keypoints_xy: Tensor, input_size: Sequence[int],
                      heatmap_size: Sequence[int], encoding: str) -> Tensor:
    """(..., 2) input-crop pixels -> heatmap pixels (x, y), pixel centres at integers.

    The inverse of the codec stride: (W-1)/(w-1) for UDP, W/w for MSRA (METHOD.md §4).
    """
    from posebh_cli.codecs.encode import heatmap_stride

    stride = heatmap_stride(tuple(input_size), tuple(heatmap_size), encoding)
    return keypoints_xy / torch.as_tensor(stride, dtype=keypoints_xy.dtype,
                                          device=keypoints_xy.device)


def sample_embedding_map(embedding_map: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of an embedding map at heatmap-pixel locations.

    embedding_map: (B, F, h, w); points: (B, K, 2) (x, y) in heatmap pixels (x = 0 is the
    centre of the first column). Returns (B, K, F) fp32; points outside the map read zeros.
    """
    height, width = embedding_map.shape[-2:]
    scale = points.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = (points.float() * scale - 1.0).unsqueeze(2)  # (B, K, 1, 2) in [-1, 1]
    sampled = F.grid_sample(embedding_map.float(), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=True)  # (B, F, K, 1)
    return sampled.squeeze(-1).transpose(1, 2)


@torch.no_grad()
def extract_keypoint_embeddings(
    model, dataset, dataset_index: int, type_offset: int, *, device: torch.device,
    batch_size: int = 32, autocast_dtype: torch.dtype | None = None, workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> KeypointEmbeddings:
    """Embeddings at the labelled keypoints of every instance of `dataset`.

    model: a PoseBHModel with an embedding head. dataset: a TopDownDataset built with
    train=False (centre crops; its transform config gives input/heatmap size and encoding).
    dataset_index: the MoE expert to route the crops through; type_offset: global id of the
    dataset's first keypoint type. Keypoints that are unlabelled or whose target window lies
    off the heatmap (weight 0) are skipped.
    """
    from posebh_cli.data.topdown_dataset import collate_pose_batch
    from posebh_cli.data.transforms import normalize_images

    if model.embedding_head is None:
        raise PosebhError("this model has no embedding head (model.embedding_dim = 0), so it "
                          "has no prototypes to cluster")
    config = dataset.transform.config
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=workers, collate_fn=collate_pose_batch)
    model.eval()
    chunks: dict[str, list[Tensor]] = {"emb": [], "kpt": [], "inst": []}
    done = 0
    for batch in loader:
        images = normalize_images(batch["image"].to(device))
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            embedding_map = model.embedding_head(model.dataset_features(images, dataset_index))
        num_keypoints = int(batch["num_keypoints"].max())
        points = heatmap_locations(batch["keypoints"][:, :num_keypoints, :2],
                                   config.input_size, config.heatmap_size, config.encoding)
        sampled = sample_embedding_map(embedding_map, points.to(device)).cpu()  # (B, K, F)
        usable = (batch["keypoints"][:, :num_keypoints, 2] > 0) & \
            (batch["weights"][:, :num_keypoints] > 0)  # (B, K)
        rows, keypoints = usable.nonzero(as_tuple=True)
        chunks["emb"].append(sampled[rows, keypoints])
        chunks["kpt"].append(keypoints)
        chunks["inst"].append(batch["index"][rows])
        done += images.shape[0]
        if progress:
            progress(done, len(dataset))
    if not chunks["emb"]:
        dim = model.embedding_head.embed_dim
        empty = torch.zeros(0, dtype=torch.int64)
        return KeypointEmbeddings(torch.zeros(0, dim), empty, empty, empty, 0)
    keypoint_ids = torch.cat(chunks["kpt"]).long()
    return KeypointEmbeddings(
        embeddings=F.normalize(torch.cat(chunks["emb"]).float(), dim=1),
        type_ids=keypoint_ids + int(type_offset),
        keypoint_ids=keypoint_ids,
        instances=torch.cat(chunks["inst"]).long(),
        num_instances=done,
    )


# ----- balanced Sinkhorn k-means (segmented) -----
@dataclass
class BalancedClustering:
    """Result of `balanced_sinkhorn_kmeans` for N points in S segments of M clusters.

    centroids: (S, M, F) unit vectors (zeros for a segment without points and no init);
    assignment: (N,) int64 cluster of each point within its segment; similarity: (N,) |cos| to
    that centroid; sizes: (S, M) int64 points per cluster; iterations: update rounds run.
    """

    centroids: Tensor
    assignment: Tensor
    similarity: Tensor
    sizes: Tensor
    iterations: int


def axial_scores(points: Tensor, segment_ids: Tensor, centroids: Tensor) -> Tensor:
    """(N, M) signed cosine of each point to the M centroids of its own segment.

    points: (N, F) unit; segment_ids: (N,); centroids: (S, M, F) unit.
    """
    return torch.einsum("nf,nmf->nm", points, centroids.index_select(0, segment_ids))


def kmeans_plus_plus(points: Tensor, segment_ids: Tensor, num_segments: int,
                     num_clusters: int, seed: int = 0) -> Tensor:
    """k-means++ seeding in every segment at once -> (S, M, F) (zeros for empty segments).

    Distance is the axial 1 - |cos|. Each next seed is drawn per segment with probability
    proportional to the squared distance to the nearest seed so far (Gumbel-max over log
    weights, so all segments draw in one vectorised step); a segment with fewer distinct
    points than M repeats points (those clusters then split the same points).
    """
    num_points, dim = points.shape
    generator = torch.Generator(device=points.device).manual_seed(int(seed))
    centroids = points.new_zeros((num_segments, num_clusters, dim))
    nearest = points.new_ones(num_points)  # squared distance to the nearest seed so far
    order = torch.arange(num_points, device=points.device)
    for m in range(num_clusters):
        total = points.new_zeros(num_segments).index_add_(0, segment_ids, nearest)
        # Segments whose points all coincide with a seed draw uniformly (repeats, see above).
        weight = torch.where(total.index_select(0, segment_ids) > 0, nearest,
                             torch.ones_like(nearest))
        uniform = torch.rand(num_points, generator=generator, device=points.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1.0 - 1e-7)))
        keys = torch.where(weight > 0, weight.clamp_min(1e-30).log() + gumbel,
                           torch.full_like(weight, float("-inf")))
        best = torch.full((num_segments,), float("-inf"), device=points.device)
        best = best.scatter_reduce(0, segment_ids, keys, reduce="amax", include_self=True)
        winner = torch.where(keys == best.index_select(0, segment_ids), order, num_points)
        chosen = torch.full((num_segments,), num_points, dtype=torch.int64, device=points.device)
        chosen = chosen.scatter_reduce(0, segment_ids, winner, reduce="amin", include_self=True)
        present = chosen < num_points
        centroids[present, m] = points[chosen[present]]
        distance = 1.0 - (points * centroids[segment_ids, m]).sum(dim=1).abs()
        nearest = torch.minimum(nearest, distance.clamp_min(0).square())
    return centroids


def balanced_sinkhorn_kmeans(
    points: Tensor, segment_ids: Tensor, num_segments: int, num_clusters: int, *,
    init: Tensor | None = None, iters: int = 10, eps: float = SINKHORN_EPS,
    sinkhorn_iters: int = SINKHORN_ITERS,
    seed: int = 0, backend: str = "auto",
) -> BalancedClustering:
    """Balanced spherical (axial) k-means with M clusters in each of S segments, all at once.

    points: (N, F) (normalised here); segment_ids: (N,) int64 in [0, S).
    init: (S, M, F) starting centroids; None = k-means++ from the points.
    Each round: Sinkhorn assignment on |cos| (every cluster of a segment gets about n_s / M of
    its points: the balance constraint of METHOD.md §2 step 3), then centroid = normalised mean
    of its sign-aligned points; clusters that receive no point keep their centroid. Stops early
    once the assignment no longer changes.
    """
    if num_clusters < 1:
        raise PosebhError(f"number of clusters must be >= 1, got {num_clusters}")
    if iters < 1:
        raise PosebhError(f"clustering iterations must be >= 1, got {iters}")
    points = F.normalize(points.float(), dim=1)
    segment_ids = segment_ids.long()
    if init is None:
        centroids = kmeans_plus_plus(points, segment_ids, num_segments, num_clusters, seed)
    else:
        if tuple(init.shape) != (num_segments, num_clusters, points.shape[1]):
            raise ValueError(f"init must be ({num_segments}, {num_clusters}, {points.shape[1]}), "
                             f"got {tuple(init.shape)}")
        centroids = F.normalize(init.float(), dim=-1)
    ones = points.new_ones(points.shape[0])

    def assign(centroids: Tensor) -> tuple[Tensor, Tensor]:
        scores = axial_scores(points, segment_ids, centroids)  # (N, M) signed cosine
        result = segmented_sinkhorn(scores.abs(), segment_ids, num_segments, eps=eps,
                                    iters=sinkhorn_iters, seed=seed, backend=backend)
        return result.hard, scores.gather(1, result.hard[:, None]).squeeze(1)

    assignment, signed = assign(centroids)
    rounds = 0
    for _ in range(iters):
        rounds += 1
        side = torch.where(signed < 0, -1.0, 1.0)[:, None]  # flip onto the centroid's side
        centroids = momentum_update_prototypes(centroids, points * side, segment_ids,
                                               assignment, ones, momentum=0.0, backend=backend)
        new_assignment, signed = assign(centroids)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
    sizes = torch.zeros(num_segments * num_clusters, dtype=torch.int64, device=points.device)
    sizes.index_add_(0, segment_ids * num_clusters + assignment, torch.ones_like(assignment))
    return BalancedClustering(centroids=centroids, assignment=assignment,
                              similarity=signed.abs(),
                              sizes=sizes.reshape(num_segments, num_clusters), iterations=rounds)


# ----- 2. per-type prototype refresh -----
@dataclass
class PrototypeRefresh:
    """New prototypes for K keypoint types.

    prototypes: (K, M, F); samples: (K,) int64 embeddings per type; cluster_sizes: (K, M);
    similarity_before / similarity_after: (K,) mean over a type's samples of the best |cos| to
    its old / new prototypes (NaN for types without samples); empty_types: types without
    samples, which keep their old prototypes.
    """

    prototypes: Tensor
    samples: Tensor
    cluster_sizes: Tensor
    similarity_before: Tensor
    similarity_after: Tensor
    empty_types: list[int]
    iterations: int


def best_similarity_per_type(embeddings: Tensor, keypoint_ids: Tensor,
                             prototypes: Tensor) -> Tensor:
    """(K,) mean over each type's embeddings of max_m |cos(e, P_km)| (NaN where no sample)."""
    num_types = prototypes.shape[0]
    unit = F.normalize(embeddings.float(), dim=1)
    best = axial_scores(unit, keypoint_ids, F.normalize(prototypes.float(), dim=-1))
    best = best.abs().amax(dim=1)
    total = best.new_zeros(num_types).index_add_(0, keypoint_ids, best)
    count = best.new_zeros(num_types).index_add_(0, keypoint_ids, torch.ones_like(best))
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def refresh_prototypes(
    embeddings: Tensor, keypoint_ids: Tensor, existing: Tensor, *, iters: int = 10,
    init: str = "kmeans++", eps: float = 0.05, sinkhorn_iters: int = 3, seed: int = 0,
    backend: str = "auto",
) -> PrototypeRefresh:
    """Balanced Sinkhorn k-means per keypoint type -> a new (K, M, F) prototype block.

    embeddings: (N, F); keypoint_ids: (N,) int64 in [0, K) (the type within the block);
    existing: (K, M, F) current prototypes (the start for init="existing", and what types
    without samples keep). init: "kmeans++" or "existing".
    """
    if init not in INIT_METHODS:
        raise PosebhError(f"--init {init!r}: expected one of {', '.join(INIT_METHODS)}")
    num_types, num_prototypes, dim = existing.shape
    if embeddings.dim() != 2 or embeddings.shape[1] != dim:
        raise ValueError(f"embeddings must be (N, {dim}), got {tuple(embeddings.shape)}")
    keypoint_ids = keypoint_ids.long().to(embeddings.device)
    if keypoint_ids.numel() and not 0 <= int(keypoint_ids.min()) <= int(keypoint_ids.max()) \
            < num_types:
        raise ValueError(f"keypoint_ids must lie in [0, {num_types})")
    kept = existing.float().to(embeddings.device)  # what types without samples keep, as is
    existing = F.normalize(kept, dim=-1)
    samples = torch.zeros(num_types, dtype=torch.int64, device=embeddings.device)
    samples.index_add_(0, keypoint_ids, torch.ones_like(keypoint_ids))
    before = best_similarity_per_type(embeddings, keypoint_ids, existing)
    if keypoint_ids.numel() == 0:
        return PrototypeRefresh(kept.clone(), samples,
                                torch.zeros(num_types, num_prototypes, dtype=torch.int64),
                                before, before.clone(), list(range(num_types)), 0)
    clustering = balanced_sinkhorn_kmeans(
        embeddings, keypoint_ids, num_types, num_prototypes,
        init=existing if init == "existing" else None, iters=iters, eps=eps,
        sinkhorn_iters=sinkhorn_iters, seed=seed, backend=backend)
    has_samples = (samples > 0)[:, None, None]
    prototypes = torch.where(has_samples, clustering.centroids, kept)  # (K, M, F)
    after = best_similarity_per_type(embeddings, keypoint_ids, prototypes)
    empty = torch.nonzero(samples == 0).flatten().tolist()
    return PrototypeRefresh(prototypes, samples, clustering.sizes, before, after, empty,
                            clustering.iterations)


# ----- 3. joint concepts across skeletons -----
@dataclass
class ConceptClustering:
    """C concepts over J keypoint types.

    assignment: (J,) int64 concept of each type; similarity: (J,) |cos| of the type vector to
    its concept centre; centroids: (C, F); sizes: (C,) types per concept; report: JSON-ready
    {"concepts": [{"concept", "size", "members": [{dataset, skeleton, keypoint, type_id,
    similarity}]}]} with members sorted by similarity.
    """

    assignment: Tensor
    similarity: Tensor
    centroids: Tensor
    sizes: Tensor
    report: dict[str, Any]


def type_vectors(prototypes: Tensor) -> Tensor:
    """(J, M, F) prototypes -> (J, F) unit type vectors: the normalised mean of each type's M
    prototypes after flipping each onto the side of the first (|cos| ignores the sign)."""
    protos = F.normalize(prototypes.float(), dim=-1)
    side = torch.where((protos * protos[:, :1]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    return F.normalize((protos * side).sum(dim=1), dim=-1)


def cluster_concepts(
    prototypes: Tensor, num_concepts: int, type_labels: Sequence[tuple[str, str, str]], *,
    iters: int = 20, eps: float = 0.05, sinkhorn_iters: int = 3, seed: int = 0,
    backend: str = "auto",
) -> ConceptClustering:
    """Balanced Sinkhorn clustering of the J type vectors into C shared concepts.

    prototypes: (J, M, F); type_labels: (J,) (dataset, skeleton, keypoint) of each global type.
    """
    num_types = prototypes.shape[0]
    if len(type_labels) != num_types:
        raise ValueError(f"{len(type_labels)} type labels for {num_types} types")
    if not 1 <= num_concepts <= num_types:
        raise PosebhError(f"--concepts {num_concepts}: expected 1 to {num_types} (the number of "
                          "keypoint types in the prototype table)")
    vectors = type_vectors(prototypes)
    segment = torch.zeros(num_types, dtype=torch.int64, device=vectors.device)
    clustering = balanced_sinkhorn_kmeans(vectors, segment, 1, num_concepts, iters=iters,
                                          eps=eps, sinkhorn_iters=sinkhorn_iters, seed=seed,
                                          backend=backend)
    concepts = []
    for concept in range(num_concepts):
        members = torch.nonzero(clustering.assignment == concept).flatten().tolist()
        entries = [{"dataset": type_labels[j][0], "skeleton": type_labels[j][1],
                    "keypoint": type_labels[j][2], "type_id": int(j),
                    "similarity": round(float(clustering.similarity[j]), 4)} for j in members]
        entries.sort(key=lambda e: -e["similarity"])
        concepts.append({"concept": concept, "size": len(entries),
                         "skeletons": sorted({e["skeleton"] for e in entries}),
                         "members": entries})
    report = {"num_concepts": num_concepts, "num_types": num_types,
              "iterations": clustering.iterations, "concepts": concepts}
    return ConceptClustering(clustering.assignment, clustering.similarity,
                             clustering.centroids[0], clustering.sizes[0], report)
