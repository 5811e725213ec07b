"""Keypoint heatmap losses (METHOD.md §3), selectable by name.

- "mse": target-weighted MSE, mean over (B_d, K_d, h, w) of (w * (pred - target))^2 as in
  ViTPose/mmpose's JointsMSELoss (so a soft weight w counts as w^2).
- "softmax_ce": spatial softmax of the logits against the target normalised to a distribution,
  -sum(target * log_softmax), weighted by w and averaged over (B_d, K_d). PERF.md: at small
  budgets it converges much faster than MSE; MSE stays the paper default.

Each head's loss is averaged over THAT dataset's samples (METHOD.md §8.6, an explicit choice: the
reference averages each head over the whole mixed batch, which shrinks a dataset's loss by its
share of the batch); the per-head losses are summed with weight 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from posebh_cli.errors import PosebhError


def weighted_mse(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """pred, target: (B, K, h, w); weight: (B, K). Mean of (w * (pred - target))^2, fp32."""
    w = weight.float()[:, :, None, None]
    return ((pred.float() - target.float()) * w).square().mean()


def softmax_heatmap_ce(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Spatial softmax cross-entropy. pred: logits (B, K, h, w); target: (B, K, h, w) >= 0;
    weight: (B, K). Keypoints with an all-zero target contribute 0."""
    logits = pred.float().flatten(2)  # (B, K, h*w)
    mass = target.float().flatten(2)
    distribution = mass / mass.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    per_keypoint = -(distribution * F.log_softmax(logits, dim=-1)).sum(dim=-1)  # (B, K)
    return (per_keypoint * weight.float()).mean()


KEYPOINT_LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "mse": weighted_mse,
    "softmax_ce": softmax_heatmap_ce,
}


def get_keypoint_loss(name: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    try:
        return KEYPOINT_LOSSES[name]
    except KeyError:
        raise PosebhError(
            f"unknown keypoint loss '{name}'; expected one of {sorted(KEYPOINT_LOSSES)}"
        ) from None


def multi_head_keypoint_loss(
    heatmaps: Mapping[str, Tensor],
    sample_indices: Mapping[str, Tensor],
    target_heatmaps: Tensor,
    target_weights: Tensor,
    kind: str = "mse",
    head_weights: Mapping[str, float] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum over heads of each head's loss on its own dataset's samples, head `name` weighted by
    head_weights[name] (default 1; the recipe's per-dataset loss_weight).

    heatmaps: name -> (B_d, K_d, h, w) head output on the samples sample_indices[name] (B_d,).
    target_heatmaps: (B, K_max, h, w) zero-padded past K_d; target_weights: (B, K_max).
    Returns (weighted total, per-head losses unweighted).
    """
    loss_fn = get_keypoint_loss(kind)
    parts: dict[str, Tensor] = {}
    for name, pred in heatmaps.items():
        index = sample_indices[name]
        num_keypoints = pred.shape[1]
        parts[name] = loss_fn(
            pred, target_heatmaps[index, :num_keypoints], target_weights[index, :num_keypoints]
        )
    if not parts:
        return target_heatmaps.new_zeros(()), parts
    weights = head_weights or {}
    return torch.stack([weights.get(name, 1.0) * part for name, part in parts.items()]).sum(), parts
