"""Momentum update of the keypoint prototype table from assigned pixel embeddings (METHOD.md §2.5).

For each type j and prototype m: f_jm = normalize(sum_p [seg_p = j, assign_p = m] w_p e_p) with
w_p = c_p^2 the confidence weight, then P_jm <- normalize(momentum P_jm + (1 - momentum) f_jm) for
the (j, m) that received mass; the others are returned bit-identical. Across processes the sums and
masses are all-reduced in one collective before normalising, so every rank holds the same table
(METHOD.md §2: "across GPUs the table is averaged every step while it is learning").
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from posebh_cli.ops.backend import resolve_backend


def momentum_update_prototypes(
    prototypes: Tensor,
    embeddings: Tensor,
    segment_ids: Tensor,
    assignment: Tensor,
    weights: Tensor,
    *,
    momentum: float = 0.999,
    process_group=None,
    backend: str = "auto",
) -> Tensor:
    """Return the updated prototype table (J, M, F) fp32; no host syncs.

    prototypes: (J, M, F) unit vectors. embeddings: (N, F) (normalised here).
    segment_ids: (N,) keypoint type j of each pixel. assignment: (N,) int64 in [0, M), the sampled
    prototype. weights: (N,) confidence weights c_p^2 (>= 0).
    process_group: all-reduce over this group; None uses the default group when
    torch.distributed is initialised, else no communication.
    backend: "auto" | "torch" | "triton" (same dispatch as segmented_sinkhorn).
    """
    num_types, num_protos, num_features = prototypes.shape
    if embeddings.dim() != 2 or embeddings.shape[1] != num_features:
        raise ValueError(
            f"embeddings must be (N, {num_features}), got {tuple(embeddings.shape)}"
        )
    num_pixels = embeddings.shape[0]
    for name, tensor in (("segment_ids", segment_ids), ("assignment", assignment),
                         ("weights", weights)):
        if tensor.shape != (num_pixels,):
            raise ValueError(f"{name} must be ({num_pixels},), got {tuple(tensor.shape)}")
    chosen = resolve_backend(backend, prototypes.device)
    slots = segment_ids.long() * num_protos + assignment.long()  # (N,) row of the flat table
    if chosen == "triton":
        from posebh_cli.ops.prototype_update_triton import (
            accumulate_prototype_sums_triton,
            finish_prototype_update_triton,
        )

        sums, mass = accumulate_prototype_sums_triton(
            embeddings, slots, weights, num_types * num_protos
        )
        sums, mass = all_reduce_sums(sums, mass, process_group)
        return finish_prototype_update_triton(prototypes, sums, mass, momentum)
    sums, mass = accumulate_prototype_sums(embeddings, slots, weights, num_types * num_protos)
    sums, mass = all_reduce_sums(sums, mass, process_group)
    return finish_prototype_update(prototypes, sums, mass, momentum)


def accumulate_prototype_sums(
    embeddings: Tensor, slots: Tensor, weights: Tensor, num_slots: int
) -> tuple[Tensor, Tensor]:
    """Weighted sums of unit embeddings per slot j * M + m: sums (S, F) and masses (S,), fp32."""
    unit = F.normalize(embeddings.float(), dim=1)
    weights = weights.float()
    sums = unit.new_zeros((num_slots, unit.shape[1])).index_add_(0, slots, unit * weights[:, None])
    mass = unit.new_zeros(num_slots).index_add_(0, slots, weights)
    return sums, mass


def all_reduce_sums(sums: Tensor, mass: Tensor, process_group=None) -> tuple[Tensor, Tensor]:
    """Sum (S, F) sums and (S,) masses over processes in ONE collective (no-op when alone)."""
    distributed = process_group is not None or (dist.is_available() and dist.is_initialized())
    if not distributed:
        return sums, mass
    packed = torch.cat([sums.reshape(-1), mass])  # one buffer: one latency, not two
    dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=process_group)
    return packed[: sums.numel()].view_as(sums), packed[sums.numel():]


def finish_prototype_update(
    prototypes: Tensor, sums: Tensor, mass: Tensor, momentum: float
) -> Tensor:
    """Mix each slot that received mass toward its normalised mean; (J, M, F) fp32."""
    old = prototypes.float().reshape(sums.shape)  # (S, F)
    target = F.normalize(sums, dim=1)
    mixed = F.normalize(momentum * old + (1.0 - momentum) * target, dim=1)
    received = (mass > 0).unsqueeze(1)  # slots without pixels keep their exact values
    return torch.where(received, mixed, old).reshape(prototypes.shape)
