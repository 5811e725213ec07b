"""Cross-type self-supervision (CSS, METHOD.md §3) with the intended maths (METHOD.md §8.2).

For dataset d's head on images of OTHER datasets, a keypoint k of d becomes a pseudo label when
- the head heatmap and d's prototype heatmap both peak above 0.25, and
- their DARK-UDP decoded locations are within 2.1 heatmap px.
Pseudo location = confidence-weighted mean of the two locations (the reference adds the prototype
confidence where its location belongs); target = UDP Gaussian (sigma 2) there; weight = min of the
two confidences. It supervises head d (keypoint loss), the prototype heatmap and the prototype
losses, all scaled by 1e-3. Pseudo labels are built in fp32 without gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from posebh_cli.codecs.decode import decode
from posebh_cli.losses.keypoint import get_keypoint_loss
from posebh_cli.losses.prototype import (
    PHM_WEIGHT,
    PPC_WEIGHT,
    PPD_WEIGHT,
    PROTOTYPE_LOSS_SCALE,
    prototype_heatmap_loss,
    prototype_loss,
)
from posebh_cli.models.prototype_learning import DatasetPixels, learn_prototypes
from posebh_cli.models.prototypes import similarity_to_heatmaps
from posebh_cli.ops import GUMBEL_TAU, SINKHORN_EPS, SINKHORN_ITERS

CSS_SCALE = 1e-3
CSS_CONFIDENCE_THRESHOLD = 0.25
CSS_MAX_DISTANCE = 2.1


@torch.no_grad()
def render_gaussian_heatmaps(
    coords: Tensor, heatmap_size: tuple[int, int], sigma: float = 2.0
) -> Tensor:
    """UDP Gaussians at continuous positions, on device, vectorised.

    coords: (B, K, 2) (x, y) in heatmap px. Returns (B, K, h, w) fp32: exp(-d^2 / 2 sigma^2)
    around the continuous centre, zero outside the (2*3sigma+1)^2 window around the rounded
    centre (the window of the UDP encoder).
    """
    height, width = heatmap_size
    coords = coords.float()
    radius = 3.0 * sigma
    rounded = torch.floor(coords + 0.5)
    xs = torch.arange(width, device=coords.device, dtype=torch.float32)
    ys = torch.arange(height, device=coords.device, dtype=torch.float32)
    dx = xs - coords[..., 0:1]  # (B, K, w)
    dy = ys - coords[..., 1:2]  # (B, K, h)
    inv_two_var = 1.0 / (2.0 * sigma * sigma)
    row = torch.exp(-dx.square() * inv_two_var) * ((xs - rounded[..., 0:1]).abs() <= radius)
    col = torch.exp(-dy.square() * inv_two_var) * ((ys - rounded[..., 1:2]).abs() <= radius)
    return col[..., :, None] * row[..., None, :]


@dataclass
class PseudoLabels:
    """coords (B, K, 2) heatmap px; weights (B, K) = min confidence where kept, else 0;
    keep (B, K) bool; heatmaps (B, K, h, w) UDP Gaussians (zero where not kept)."""

    coords: Tensor
    weights: Tensor
    keep: Tensor
    heatmaps: Tensor


@torch.no_grad()
def css_pseudo_labels(
    head_heatmaps: Tensor,
    prototype_heatmaps: Tensor,
    *,
    threshold: float = CSS_CONFIDENCE_THRESHOLD,
    max_distance: float = CSS_MAX_DISTANCE,
    sigma: float = 2.0,
    decode_method: str = "dark_udp",
) -> PseudoLabels:
    """Agreement of head and prototype heatmaps, both (B, K, h, w) -> PseudoLabels."""
    head_xy, head_conf = decode(head_heatmaps.detach().float(), decode_method)
    proto_xy, proto_conf = decode(prototype_heatmaps.detach().float(), decode_method)
    distance = (head_xy - proto_xy).norm(dim=-1)  # (B, K) between the two decoded locations
    keep = (head_conf > threshold) & (proto_conf > threshold) & (distance <= max_distance)
    total = (head_conf + proto_conf).clamp_min(1e-12)[..., None]
    coords = (head_conf[..., None] * head_xy + proto_conf[..., None] * proto_xy) / total
    weights = torch.minimum(head_conf, proto_conf) * keep
    heatmaps = render_gaussian_heatmaps(coords, head_heatmaps.shape[-2:], sigma)
    heatmaps = heatmaps * keep[..., None, None]
    return PseudoLabels(coords, weights, keep, heatmaps)


@dataclass
class CssInput:
    """Head d run on samples of other datasets.

    type_offset: global id of d's first type. head_heatmaps: (B', K_d, h, w) with grad, the
    head's output as its keypoint loss sees it (logits for a softmax-CE head).
    similarity: (B', K_d, M, h, w) |cos| of those samples' embeddings to d's prototypes (grad).
    embeddings: (B', F, h, w).
    decoded_heatmaps: (B', K_d, h, w) the head's maps on the target scale, for the confidence
    threshold and decoding (HeatmapHead.to_heatmaps); None = head_heatmaps are already that.
    """

    type_offset: int
    head_heatmaps: Tensor
    similarity: Tensor
    embeddings: Tensor
    decoded_heatmaps: Tensor | None = None


@dataclass
class CssLoss:
    total: Tensor  # scale * (keypoint + phm + prototype)
    keypoint: Tensor
    prototype_heatmap: Tensor
    prototype: Tensor
    pseudo_keypoints: Tensor  # number of kept pseudo labels (no host sync)


def css_loss(
    inputs: Sequence[CssInput],
    prototypes: Tensor,
    *,
    keypoint_loss: str = "mse",
    scale: float = CSS_SCALE,
    threshold: float = CSS_CONFIDENCE_THRESHOLD,
    max_distance: float = CSS_MAX_DISTANCE,
    sigma: float = 2.0,
    decode_method: str = "dark_udp",
    phm_weight: float = PHM_WEIGHT,
    prototype_scale: float = PROTOTYPE_LOSS_SCALE,
    ppc_weight: float = PPC_WEIGHT,
    ppd_weight: float = PPD_WEIGHT,
    sinkhorn_seed: int | None = None,
    backend: str = "auto",
    eps: float = SINKHORN_EPS,
    iters: int = SINKHORN_ITERS,
    tau: float = GUMBEL_TAU,
) -> CssLoss:
    """CSS over all heads; the prototype targets come from ONE Sinkhorn pass (no update), with
    the recipe's Sinkhorn settings (eps, iters, Gumbel tau) as in the step's own pass."""
    if not inputs:
        raise ValueError("css_loss needs at least one head input")
    loss_fn = get_keypoint_loss(keypoint_loss)
    keypoint_terms, phm_terms, groups, kept = [], [], [], []
    for item in inputs:
        prototype_heatmaps = similarity_to_heatmaps(item.similarity)
        head_maps = item.head_heatmaps if item.decoded_heatmaps is None else item.decoded_heatmaps
        labels = css_pseudo_labels(
            head_maps, prototype_heatmaps, threshold=threshold,
            max_distance=max_distance, sigma=sigma, decode_method=decode_method,
        )
        keypoint_terms.append(loss_fn(item.head_heatmaps, labels.heatmaps, labels.weights))
        phm_terms.append(prototype_heatmap_loss(prototype_heatmaps, labels.heatmaps,
                                                labels.weights, scale=phm_weight))
        groups.append(DatasetPixels(item.type_offset, item.similarity, item.embeddings,
                                    labels.heatmaps, labels.weights))
        kept.append(labels.keep.sum())
    learned = learn_prototypes(prototypes, groups, update=False, eps=eps, iters=iters, tau=tau,
                               seed=sinkhorn_seed, backend=backend)
    proto = prototype_loss([item.similarity for item in inputs], learned.targets,
                           scale=prototype_scale, ppc_weight=ppc_weight, ppd_weight=ppd_weight)
    keypoint = torch.stack(keypoint_terms).sum()
    phm = torch.stack(phm_terms).sum()
    return CssLoss(scale * (keypoint + phm + proto.total), keypoint, phm, proto.total,
                   torch.stack(kept).sum())
