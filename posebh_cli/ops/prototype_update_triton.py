"""Triton kernels for the prototype momentum update (METHOD.md §2.5), no host syncs.

accumulate: one program per block of pixels normalises its embeddings, weights them by c_p^2 and
atomically adds them into the flat (J * M, F) sums and (J * M,) masses. finish: one program per
block of slots mixes slots that received mass toward their normalised mean and renormalises. The
all-reduce across ranks (posebh_cli.ops.prototype_update.all_reduce_sums) runs between the two.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _accumulate_kernel(emb_ptr, slot_ptr, weight_ptr, sums_ptr, mass_ptr, num_pixels,
                       num_features, BLOCK_P: tl.constexpr, BLOCK_F: tl.constexpr):
    pixels = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    feats = tl.arange(0, BLOCK_F)
    pix_mask = pixels < num_pixels
    mask = pix_mask[:, None] & (feats < num_features)[None, :]
    emb = tl.load(emb_ptr + pixels[:, None] * num_features + feats[None, :], mask=mask, other=0.0)
    norm = tl.maximum(tl.sqrt(tl.sum(emb * emb, axis=1)), 1e-12)
    weight = tl.load(weight_ptr + pixels, mask=pix_mask, other=0.0)
    slot = tl.load(slot_ptr + pixels, mask=pix_mask, other=0)
    tl.atomic_add(sums_ptr + slot[:, None] * num_features + feats[None, :],
                  emb * (weight / norm)[:, None], mask=mask)
    tl.atomic_add(mass_ptr + slot, weight, mask=pix_mask)


@triton.jit
def _finish_kernel(proto_ptr, sums_ptr, mass_ptr, out_ptr, num_slots, num_features, momentum,
                   BLOCK_S: tl.constexpr, BLOCK_F: tl.constexpr):
    slots = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S)
    feats = tl.arange(0, BLOCK_F)
    slot_mask = slots < num_slots
    mask = slot_mask[:, None] & (feats < num_features)[None, :]
    offsets = slots[:, None] * num_features + feats[None, :]
    old = tl.load(proto_ptr + offsets, mask=mask, other=0.0)
    sums = tl.load(sums_ptr + offsets, mask=mask, other=0.0)
    mass = tl.load(mass_ptr + slots, mask=slot_mask, other=0.0)
    target = sums / tl.maximum(tl.sqrt(tl.sum(sums * sums, axis=1)), 1e-12)[:, None]
    mixed = momentum * old + (1.0 - momentum) * target
    mixed = mixed / tl.maximum(tl.sqrt(tl.sum(mixed * mixed, axis=1)), 1e-12)[:, None]
    tl.store(out_ptr + offsets, tl.where((mass > 0)[:, None], mixed, old), mask=mask)


def accumulate_prototype_sums_triton(
    embeddings: Tensor, slots: Tensor, weights: Tensor, num_slots: int
) -> tuple[Tensor, Tensor]:
    """Weighted sums of unit embeddings per slot: sums (S, F) and masses (S,), fp32."""
    embeddings = embeddings.float().contiguous()
    num_pixels, num_features = embeddings.shape
    sums = embeddings.new_zeros((num_slots, num_features))
    mass = embeddings.new_zeros(num_slots)
    if num_pixels == 0:
        return sums, mass
    block_f = triton.next_power_of_2(num_features)
    block_p = max(1, 4096 // block_f)
    _accumulate_kernel[(triton.cdiv(num_pixels, block_p),)](
        embeddings, slots.contiguous(), weights.float().contiguous(), sums, mass, num_pixels,
        num_features, BLOCK_P=block_p, BLOCK_F=block_f)
    return sums, mass


def finish_prototype_update_triton(
    prototypes: Tensor, sums: Tensor, mass: Tensor, momentum: float
) -> Tensor:
    """New (J, M, F) fp32 table: slots with mass > 0 mixed and renormalised, others copied."""
    old = prototypes.float().contiguous()
    out = torch.empty_like(old)
    num_slots, num_features = sums.shape
    block_f = triton.next_power_of_2(num_features)
    block_s = max(1, 4096 // block_f)
    _finish_kernel[(triton.cdiv(num_slots, block_s),)](
        old, sums.contiguous(), mass.contiguous(), out, num_slots, num_features, float(momentum),
        BLOCK_S=block_s, BLOCK_F=block_f)
    return out
