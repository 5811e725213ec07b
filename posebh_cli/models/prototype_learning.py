"""Prototype learning for a whole batch (METHOD.md §2, steps 1-5), global type ids everywhere.

For every dataset d present in the batch (its samples' similarity to d's K_d * M prototypes):
1. labelled pixels: GT Gaussian > threshold for some visible keypoint of d; class = argmax
   keypoint (global id offset_d + k), confidence c = that Gaussian value;
2. kept pixels: the argmax over d's prototype heatmaps equals the class (METHOD.md §8.1: the
   class and the prototype rows are both global ids, so every dataset's prototypes move);
3. ONE segmented Sinkhorn over all types of all datasets (METHOD.md §8.4): segment = global type,
   pixels that are not assigned go to an extra "unused" segment J that is solved and ignored, so
   no boolean compaction (host sync) is needed;
4. hard target m* = argmax q (PPC/PPD targets), update one-hot = Gumbel sample on log q (§8.3);
5. momentum update with weights c^2 on kept pixels only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from posebh_cli.models.prototypes import PHM_MAX, PHM_MIN
from posebh_cli.ops import (
    GUMBEL_TAU,
    SINKHORN_EPS,
    SINKHORN_ITERS,
    momentum_update_prototypes,
    segmented_sinkhorn,
)


@dataclass
class DatasetPixels:
    """One dataset's share of the batch.

    type_offset: global id of the dataset's first keypoint type.
    similarity: (B_d, K_d, M, H, W) |cos| to the dataset's prototypes (detached here).
    embeddings: (B_d, F, H, W) pixel embeddings.
    target_heatmaps: (B_d, K_d, H, W) GT Gaussians (or pseudo labels, CSS).
    target_weights: (B_d, K_d) keypoint weights; > 0 means visible.
    """

    type_offset: int
    similarity: Tensor
    embeddings: Tensor
    target_heatmaps: Tensor
    target_weights: Tensor


@dataclass
class PixelTargets:
    """Per-pixel labels of one dataset, all (B_d, H, W).

    labelled: GT Gaussian above the threshold; correct: also classified right by the prototypes;
    assigned: has a PPC/PPD target (kept, or labelled with sinkhorn_pixels="labelled").
    local_type: class k within the dataset's block (0 where unlabelled); global_type = offset + k.
    prototype: m*, the hard Sinkhorn assignment; confidence: the GT Gaussian value c.
    """

    labelled: Tensor
    correct: Tensor
    assigned: Tensor
    local_type: Tensor
    global_type: Tensor
    prototype: Tensor
    confidence: Tensor

    def target_index(self, num_prototypes: int) -> Tensor:
        """PPC target M * y + m* within the dataset's own K_d * M logits, (B_d, H, W)."""
        return self.local_type * num_prototypes + self.prototype


@dataclass
class PrototypeLearningResult:
    """New table (J, M, F), per-dataset targets, and stats as tensors (no host sync)."""

    prototypes: Tensor
    targets: list[PixelTargets]
    pixels_labelled: Tensor  # () int64
    pixels_kept: Tensor  # () int64
    kept_per_type: Tensor  # (J,) int64


def predicted_types(similarity: Tensor) -> Tensor:
    """Each pixel's class by its prototype heatmaps: argmax_k clamp(max_m s) (B, H, W) of
    similarity (B, K, M, H, W).

    Computed as argmax over the flattened (k, m) of clamp(s) divided by M, which is the same
    index (clamp is monotone, so max_m clamp(s) = clamp(max_m s), and both take the first k at a
    tie) but reduces over contiguous memory when the similarity is laid out pixels-first
    (PrototypeTable.similarity): an argmax across the K planes took 7 ms of a CPU step.
    """
    batch, types, prototypes, height, width = similarity.shape
    flat = similarity.clamp(PHM_MIN, PHM_MAX).permute(0, 3, 4, 1, 2)
    flat = flat.reshape(batch, height, width, types * prototypes)
    return torch.div(flat.argmax(dim=-1), prototypes, rounding_mode="floor")


@torch.no_grad()
def label_pixels(
    similarity: Tensor,
    target_heatmaps: Tensor,
    target_weights: Tensor,
    confidence_threshold: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Steps 1-2 for one dataset: (labelled, local class, confidence, correct), each (B, H, W).

    similarity: (B, K, M, H, W); target_heatmaps: (B, K, H, W); target_weights: (B, K).
    """
    visible = (target_weights > 0).to(target_heatmaps.dtype)[:, :, None, None]
    confidence, local_type = (target_heatmaps.float() * visible).max(dim=1)  # (B, H, W)
    labelled = confidence > confidence_threshold
    predicted = predicted_types(similarity.float())  # (B, H, W)
    correct = labelled & (predicted == local_type)
    return labelled, local_type, confidence, correct


@torch.no_grad()
def learn_prototypes(
    prototypes: Tensor,
    groups: Sequence[DatasetPixels],
    *,
    update: bool = True,
    eps: float = SINKHORN_EPS,
    iters: int = SINKHORN_ITERS,
    tau: float = GUMBEL_TAU,
    momentum: float = 0.999,
    confidence_threshold: float = 0.0,
    sinkhorn_pixels: Literal["kept", "labelled"] = "kept",
    seed: int | None = None,
    backend: str = "auto",
    process_group=None,
) -> PrototypeLearningResult:
    """METHOD.md §2 for all datasets of a batch with one Sinkhorn call and one update.

    prototypes: (J, M, F). update=False only produces targets (frozen prototypes, CSS).
    sinkhorn_pixels: "kept" (METHOD.md §2 as written: only correctly classified pixels get a
    Sinkhorn assignment and a PPC/PPD target) or "labelled" (ProtoSeg style: every labelled pixel
    gets a target; the update still uses kept pixels only).
    """
    if not groups:
        raise ValueError("learn_prototypes needs at least one dataset group")
    num_types, num_prototypes, _ = prototypes.shape
    unused_segment = num_types  # the extra segment that collects unassigned pixels
    scores, segments, embeddings, weights, targets = [], [], [], [], []
    for group in groups:
        similarity = group.similarity.detach().float()
        if (group.embeddings.shape[0], *group.embeddings.shape[2:]) != (
            similarity.shape[0], *similarity.shape[3:]
        ):
            raise ValueError(
                f"embeddings {tuple(group.embeddings.shape)} do not match similarity "
                f"{tuple(similarity.shape)} in batch or spatial size"
            )
        labelled, local_type, confidence, correct = label_pixels(
            similarity, group.target_heatmaps, group.target_weights, confidence_threshold
        )
        assigned = correct if sinkhorn_pixels == "kept" else labelled
        batch, _, _, height, width = similarity.shape
        index = local_type[:, None, None].expand(batch, 1, num_prototypes, height, width)
        class_scores = similarity.gather(1, index).squeeze(1)  # (B, M, H, W)
        scores.append(class_scores.permute(0, 2, 3, 1).reshape(-1, num_prototypes))
        global_type = local_type + group.type_offset
        segments.append(torch.where(assigned, global_type, unused_segment).reshape(-1))
        embeddings.append(group.embeddings.detach().float().permute(0, 2, 3, 1)
                          .reshape(batch * height * width, -1))
        weights.append((confidence.square() * correct).reshape(-1))  # c^2 on kept pixels
        targets.append(PixelTargets(labelled, correct, assigned, local_type, global_type,
                                    local_type, confidence))  # prototype filled in below
    all_segments = torch.cat(segments)
    result = segmented_sinkhorn(
        torch.cat(scores), all_segments, num_types + 1,
        eps=eps, iters=iters, tau=tau, seed=seed, backend=backend,
    )
    start = 0
    for target in targets:
        count = target.labelled.numel()
        target.prototype = result.hard[start:start + count].reshape(target.labelled.shape)
        start += count
    kept = torch.cat([t.correct.reshape(-1) for t in targets])
    if update:
        # Weight-0 pixels add no mass, so parking them on type 0 leaves every prototype unchanged.
        update_segments = torch.where(kept, all_segments.clamp(max=num_types - 1), 0)
        new_prototypes = momentum_update_prototypes(
            prototypes, torch.cat(embeddings), update_segments, result.sampled,
            torch.cat(weights), momentum=momentum, process_group=process_group, backend=backend,
        )
    else:
        new_prototypes = prototypes
    kept_segments = torch.where(kept, all_segments, unused_segment)
    # index_add, not bincount: bincount sizes its output from the data (a host sync on GPU).
    kept_per_type = torch.zeros(num_types + 1, dtype=torch.int64, device=kept.device)
    kept_per_type = kept_per_type.index_add_(0, kept_segments, torch.ones_like(kept_segments))
    kept_per_type = kept_per_type[:num_types]
    labelled_count = sum(t.labelled.sum() for t in targets)
    return PrototypeLearningResult(
        prototypes=new_prototypes,
        targets=targets,
        pixels_labelled=torch.as_tensor(labelled_count),
        pixels_kept=kept.sum(),
        kept_per_type=kept_per_type,
    )
