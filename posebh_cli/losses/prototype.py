"""Prototype losses (METHOD.md §3): PPC, PPD and the prototype-heatmap MSE.

- PPC: cross-entropy over dataset d's K_d * M logits |cos| (no temperature) with target
  M * y + m*, y the pixel's class within d's block and m* its Sinkhorn assignment.
- PPD: mean over assigned pixels of (1 - s(p, target))^2.
- prototype loss = 1.25e-5 * (0.01 PPC + 0.001 PPD); prototype-heatmap MSE weight 3.33e-6.
PPC/PPD average over all assigned pixels of all datasets of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from posebh_cli.losses.keypoint import weighted_mse
from posebh_cli.models.prototype_learning import PixelTargets

PROTOTYPE_LOSS_SCALE = 1.25e-5
PPC_WEIGHT = 0.01
PPD_WEIGHT = 0.001
PHM_WEIGHT = 3.33e-6


@dataclass
class PrototypeLoss:
    total: Tensor  # scale * (ppc_weight * ppc + ppd_weight * ppd)
    ppc: Tensor
    ppd: Tensor
    pixels: Tensor  # number of assigned pixels (float tensor, no host sync)


def ppc_ppd_sums(similarity: Tensor, targets: PixelTargets) -> tuple[Tensor, Tensor, Tensor]:
    """Sums over assigned pixels of the PPC cross-entropy and PPD, and the pixel count.

    similarity: (B, K_d, M, H, W) |cos| to dataset d's prototypes only, so the target index
    (built from global ids minus d's offset) points into d's own block.
    """
    batch, num_keypoints, num_prototypes, height, width = similarity.shape
    logits = similarity.float().permute(0, 3, 4, 1, 2).reshape(batch, height, width, -1)
    target = targets.target_index(num_prototypes).unsqueeze(-1)  # (B, H, W, 1)
    ce = -F.log_softmax(logits, dim=-1).gather(-1, target).squeeze(-1)  # (B, H, W)
    distance = (1.0 - logits.gather(-1, target).squeeze(-1)).square()
    mask = targets.assigned.float()
    return (ce * mask).sum(), (distance * mask).sum(), mask.sum()


def prototype_loss(
    similarities: Sequence[Tensor],
    targets: Sequence[PixelTargets],
    *,
    scale: float = PROTOTYPE_LOSS_SCALE,
    ppc_weight: float = PPC_WEIGHT,
    ppd_weight: float = PPD_WEIGHT,
) -> PrototypeLoss:
    """PPC and PPD averaged over every assigned pixel of every dataset; 0 when there is none."""
    if len(similarities) != len(targets) or not similarities:
        raise ValueError("need one PixelTargets per similarity tensor, at least one")
    sums = [ppc_ppd_sums(s, t) for s, t in zip(similarities, targets, strict=True)]
    ce_sum, distance_sum, count = (torch.stack(column).sum() for column in zip(*sums, strict=True))
    denominator = count.clamp_min(1.0)
    ppc, ppd = ce_sum / denominator, distance_sum / denominator
    return PrototypeLoss(scale * (ppc_weight * ppc + ppd_weight * ppd), ppc, ppd, count)


def prototype_heatmap_loss(
    prototype_heatmaps: Tensor, target: Tensor, weight: Tensor, *, scale: float = PHM_WEIGHT
) -> Tensor:
    """scale * target-weighted MSE of phm (B, K, H, W) against the GT heatmaps, weights (B, K)."""
    return scale * weighted_mse(prototype_heatmaps, target, weight)
