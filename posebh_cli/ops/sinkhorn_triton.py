"""Fused Triton kernels for the segmented Sinkhorn-Knopp of posebh_cli.ops.sinkhorn (PERF.md).

Same maths as the torch path (log column scalings, never a rewritten matrix), as t + 2 passes
over the (N, K) scores, each ONE launch covering all segments:
  1. column max per segment (atomic max)            -> col_max (J, K)
  2. column mass of exp((s - col_max) / eps)         -> log c = -log mass
  3. t - 1 times: column mass of pi = softmax_k(L + log c) -> log c -= log mass
  4. final read + write: q = softmax_k(L + log c), fused argmax and seeded Gumbel sample.
Pixels are grouped by segment with a stable argsort (skipped for one segment) and read through that
permutation; each program owns a tile of BLOCK_N rows of ONE segment, so column sums are reduced in
the tile and cross tiles only as K atomic adds. The tile table is built on the device from bincount
/ cumsum / searchsorted with a static grid (cdiv(N, BLOCK_N) + J programs; spares exit): no host
syncs. The Gumbel noise is tl.rand(seed, row * K + k), keyed by the ORIGINAL row index, so a seed
gives the same sample whatever the sort; it is a different stream from torch's generator.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from posebh_cli.ops.sinkhorn import SinkhornResult

_TILE_ELEMENTS = 4096  # rows x padded columns held by one program


@triton.jit
def _load_tile(scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr, num_cols,
               BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Rows of this program's tile: (original row ids, segment, row mask, col offsets, col mask)."""
    tile = tl.program_id(0)
    segment = tl.load(tile_seg_ptr + tile)
    start = tl.load(tile_start_ptr + tile)
    end = tl.load(tile_end_ptr + tile)
    sorted_pos = start + tl.arange(0, BLOCK_N)
    row_mask = sorted_pos < end
    rows = tl.load(rows_ptr + sorted_pos, mask=row_mask, other=0)
    cols = tl.arange(0, BLOCK_K)
    col_mask = cols < num_cols
    return rows, segment, row_mask, cols, col_mask


@triton.jit
def _column_max_kernel(scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr,
                       col_max_ptr, num_cols, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows, segment, row_mask, cols, col_mask = _load_tile(
        scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr, num_cols,
        BLOCK_N, BLOCK_K)
    mask = row_mask[:, None] & col_mask[None, :]
    scores = tl.load(scores_ptr + rows[:, None] * num_cols + cols[None, :], mask=mask,
                     other=-float("inf"))
    tile_max = tl.max(scores, axis=0)  # (BLOCK_K,)
    tl.atomic_max(col_max_ptr + segment * num_cols + cols, tile_max,
                  mask=col_mask & (tl.sum(row_mask.to(tl.int32), axis=0) > 0))


@triton.jit
def _column_mass_kernel(scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr,
                        col_max_ptr, log_c_ptr, mass_ptr, num_cols, inv_eps,
                        FIRST: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows, segment, row_mask, cols, col_mask = _load_tile(
        scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr, num_cols,
        BLOCK_N, BLOCK_K)
    mask = row_mask[:, None] & col_mask[None, :]
    scores = tl.load(scores_ptr + rows[:, None] * num_cols + cols[None, :], mask=mask, other=0.0)
    col_max = tl.load(col_max_ptr + segment * num_cols + cols, mask=col_mask, other=0.0)
    logits = (scores - col_max[None, :]) * inv_eps  # <= 0: exp cannot overflow
    if FIRST:
        # Prototype step of iteration 1 on the raw matrix: column mass of exp(L).
        contribution = tl.exp(tl.where(mask, logits, -float("inf")))  # padding lanes -> 0
    else:
        # Previous pixel step folded in: pi = rows of A c normalised to 1.
        log_c = tl.load(log_c_ptr + segment * num_cols + cols, mask=col_mask, other=0.0)
        shifted = tl.where(col_mask[None, :], logits + log_c[None, :], -float("inf"))
        row_max = tl.max(shifted, axis=1)
        unnorm = tl.exp(shifted - row_max[:, None])
        contribution = tl.where(mask, unnorm / tl.sum(unnorm, axis=1)[:, None], 0.0)
    tl.atomic_add(mass_ptr + segment * num_cols + cols, tl.sum(contribution, axis=0),
                  mask=col_mask & (tl.sum(row_mask.to(tl.int32), axis=0) > 0))


@triton.jit
def _assign_kernel(scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr,
                   col_max_ptr, log_c_ptr, q_ptr, hard_ptr, sampled_ptr, num_cols, inv_eps,
                   inv_tau, seed, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rows, segment, row_mask, cols, col_mask = _load_tile(
        scores_ptr, rows_ptr, tile_seg_ptr, tile_start_ptr, tile_end_ptr, num_cols,
        BLOCK_N, BLOCK_K)
    mask = row_mask[:, None] & col_mask[None, :]
    offsets = rows[:, None] * num_cols + cols[None, :]
    scores = tl.load(scores_ptr + offsets, mask=mask, other=0.0)
    col_max = tl.load(col_max_ptr + segment * num_cols + cols, mask=col_mask, other=0.0)
    log_c = tl.load(log_c_ptr + segment * num_cols + cols, mask=col_mask, other=0.0)
    shifted = tl.where(col_mask[None, :], (scores - col_max[None, :]) * inv_eps + log_c[None, :],
                       -float("inf"))
    row_max = tl.max(shifted, axis=1)
    unnorm = tl.exp(shifted - row_max[:, None])
    row_sum = tl.sum(unnorm, axis=1)
    tl.store(q_ptr + offsets, unnorm / row_sum[:, None], mask=mask)
    tl.store(hard_ptr + rows, tl.argmax(shifted, axis=1).to(tl.int64), mask=row_mask)
    # Hard Gumbel-softmax on log q (METHOD.md §8 item 3): argmax (log q + g) / tau.
    log_q = shifted - row_max[:, None] - tl.log(row_sum)[:, None]
    uniform = tl.rand(seed, offsets)
    uniform = tl.minimum(tl.maximum(uniform, 1.1754944e-38), 1.0 - 1e-7)
    gumbel = -tl.log(-tl.log(uniform))
    perturbed = tl.where(col_mask[None, :], (log_q + gumbel) * inv_tau, -float("inf"))
    tl.store(sampled_ptr + rows, tl.argmax(perturbed, axis=1).to(tl.int64), mask=row_mask)


def segment_tiles(segment_ids: Tensor, num_segments: int, block_rows: int):
    """Group rows by segment and cut each segment into tiles of <= block_rows rows, on device.

    Returns rows (N,) original row ids in segment order, and per program (cdiv(N, B) + J,):
    tile_seg (segment; J for spare programs, which do nothing), tile_start, tile_end (positions
    in `rows`). No host syncs: every size is static.
    """
    num_rows = segment_ids.shape[0]
    device = segment_ids.device
    if num_segments == 1:
        rows = torch.arange(num_rows, device=device)  # one segment: no sort needed
    else:
        rows = torch.argsort(segment_ids, stable=True)
    counts = torch.bincount(segment_ids, minlength=num_segments)  # (J,)
    seg_start = torch.cumsum(counts, 0) - counts
    tiles_per_seg = (counts + block_rows - 1) // block_rows
    tiles_end = torch.cumsum(tiles_per_seg, 0)
    num_programs = triton.cdiv(num_rows, block_rows) + num_segments
    program = torch.arange(num_programs, device=device)
    tile_seg = torch.searchsorted(tiles_end, program, right=True)  # (P,) J past the last tile
    seg = tile_seg.clamp_max(num_segments - 1)
    first_tile = tiles_end[seg] - tiles_per_seg[seg]
    tile_start = seg_start[seg] + (program - first_tile) * block_rows
    tile_end = torch.minimum(tile_start + block_rows, seg_start[seg] + counts[seg])
    return rows, tile_seg, tile_start, tile_end


def segmented_sinkhorn_triton(
    scores: Tensor, segment_ids: Tensor, num_segments: int, eps: float, iters: int, tau: float,
    seed: int | None, block_rows: int | None = None,
) -> SinkhornResult:
    """Triton path of segmented_sinkhorn. scores: (N, K) fp32; segment_ids: (N,) int64.

    block_rows overrides the tile height (tests use it to force many tiles per segment).
    """
    scores = scores.contiguous()
    num_rows, num_cols = scores.shape
    device = scores.device
    q = torch.empty_like(scores)
    hard = torch.empty(num_rows, dtype=torch.int64, device=device)
    sampled = torch.empty(num_rows, dtype=torch.int64, device=device)
    if num_rows == 0:
        return SinkhornResult(assignment=q, hard=hard, sampled=sampled)
    block_k = triton.next_power_of_2(num_cols)
    block_n = block_rows or max(1, _TILE_ELEMENTS // block_k)
    rows, tile_seg, tile_start, tile_end = segment_tiles(segment_ids, num_segments, block_n)
    grid = (tile_seg.shape[0],)
    tiles = (rows, tile_seg, tile_start, tile_end)
    table = (num_segments, num_cols)
    if seed is None:  # drawn on the host from torch's global RNG: no device sync
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    if iters == 0:
        col_max = scores.new_zeros(table)  # no prototype step: plain row softmax of s / eps
        log_c = scores.new_zeros(table)
    else:
        col_max = scores.new_full(table, -float("inf"))
        _column_max_kernel[grid](scores, *tiles, col_max, num_cols,
                                 BLOCK_N=block_n, BLOCK_K=block_k)
        # Empty segments keep -inf; they are never read, but keep the table finite.
        col_max = torch.where(torch.isfinite(col_max), col_max, 0.0)
        log_c = scores.new_zeros(table)
        for iteration in range(iters):
            mass = scores.new_zeros(table)
            _column_mass_kernel[grid](scores, *tiles, col_max, log_c, mass, num_cols, 1.0 / eps,
                                      FIRST=iteration == 0, BLOCK_N=block_n, BLOCK_K=block_k)
            # Same clamps as the torch path: exact for non-empty segments, finite for empty ones.
            log_c = log_c - mass.clamp_min(1.0 if iteration == 0 else 1e-30).log()
    _assign_kernel[grid](scores, *tiles, col_max, log_c, q, hard, sampled, num_cols, 1.0 / eps,
                         1.0 / tau, seed, BLOCK_N=block_n, BLOCK_K=block_k)
    return SinkhornResult(assignment=q, hard=hard, sampled=sampled)
