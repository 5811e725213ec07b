"""Segmented Sinkhorn-Knopp: every keypoint type's assignment problem solved at once (METHOD.md §2).

Each segment j (a keypoint type, or one big segment for clustering) is an independent Sinkhorn
problem on A = exp(scores / eps) restricted to its n_j rows (pixels) and the K candidate columns
(prototypes). Per iteration, SwAV-style: scale each prototype column to mass 1/K, then each pixel
row to mass 1/n_j; at the end each pixel row is scaled to sum to 1 (METHOD.md §2 step 3).

How it is computed (the same maths in the torch and Triton paths, see PERF.md): the matrix is never
rewritten; only the column scalings log c (one per segment and prototype) are kept, in the log
domain, because with 1/eps = 20 the exponentials reach e^20 and a tiny eps would overflow fp32.
  * iteration 1, columns: log c_k = -logsumexp_p(L_pk) with L = scores / eps (each segment's
    column max is subtracted before exp: overflow-safe, and exact because a column scaling is
    absorbed by the first prototype step).
  * the pixel step of iteration i leaves rows r_p = 1 / (n sum_k A_pk c_k), so the next column step
    is c_k <- c_k / sum_p pi_pk with pi = softmax_k(L_pk + log c_k) (constants common to a segment
    cancel in the final row normalisation and are dropped). pi is a row softmax (overflow-safe) and
    sum_p pi_pk >= 1 / (K n_j) after any column step, so nothing underflows.
  * final: q = softmax_k(L_pk + log c_k), which is the last pixel step followed by the scaling of
    each row to 1.
That is t + 2 passes over the N x K scores: column max, t column sums, one final read + write.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from posebh_cli.errors import PosebhError
from posebh_cli.ops.backend import resolve_backend

# Lower clamp for column masses: exact for every non-empty segment (their masses are >= 1/(K n_j)),
# and keeps empty segments (never read back) finite instead of inf/NaN.
# METHOD.md §2: entropy eps, Sinkhorn-Knopp iterations and Gumbel tau; the defaults of every
# caller (the recipe's [prototypes] section overrides them in training).
SINKHORN_EPS = 0.05
SINKHORN_ITERS = 3
GUMBEL_TAU = 0.5

_MIN_COLUMN_MASS = 1e-30


@dataclass(frozen=True)
class SinkhornResult:
    """Output of `segmented_sinkhorn` for N pixels and K candidate prototypes.

    assignment: (N, K) fp32 soft assignment q; each pixel's row sums to 1.
    hard: (N,) int64 argmax of the assignment (the hard target, METHOD.md §2 step 4).
    sampled: (N,) int64 index of a hard Gumbel-softmax sample on log(assignment) at temperature
        tau (the one-hot used for the prototype update; on log-probabilities, METHOD.md §8 item 3).
    """

    assignment: Tensor
    hard: Tensor
    sampled: Tensor


def validate_sinkhorn_args(
    scores: Tensor, segment_ids: Tensor, num_segments: int, eps: float, iters: int, tau: float
) -> None:
    """Shape checks are bugs (ValueError); bad hyper-parameters come from recipes (PosebhError)."""
    if scores.dim() != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be (N, K) with K >= 1, got shape {tuple(scores.shape)}")
    if segment_ids.shape != scores.shape[:1]:
        raise ValueError(
            f"segment_ids must be (N,) = ({scores.shape[0]},), got {tuple(segment_ids.shape)}"
        )
    if segment_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"segment_ids must be an integer tensor, got {segment_ids.dtype}")
    if segment_ids.device != scores.device:
        raise ValueError(f"segment_ids on {segment_ids.device} but scores on {scores.device}")
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    if not eps > 0:
        raise PosebhError(f"sinkhorn eps must be > 0, got {eps}")
    if iters < 0:
        raise PosebhError(f"sinkhorn iters must be >= 0, got {iters}")
    if not tau > 0:
        raise PosebhError(f"gumbel tau must be > 0, got {tau}")


def segmented_sinkhorn(
    scores: Tensor,
    segment_ids: Tensor,
    num_segments: int,
    *,
    eps: float = SINKHORN_EPS,
    iters: int = SINKHORN_ITERS,
    tau: float = GUMBEL_TAU,
    seed: int | None = None,
    backend: str = "auto",
) -> SinkhornResult:
    """Solve one Sinkhorn-Knopp problem per segment, all segments in one vectorised pass.

    scores: (N, K) similarity of each pixel to the K candidate prototypes of its own segment.
    segment_ids: (N,) int64 in [0, num_segments), any order; segments may be empty.
    eps: entropic temperature (A = exp(scores / eps)); iters: Sinkhorn iterations.
    tau: Gumbel-softmax temperature (does not change the hard sample, kept for the record).
    seed: makes the Gumbel sample reproducible on one backend; None draws from torch's global RNG.
    backend: "auto" | "torch" | "triton" (see posebh_cli.ops.backend.resolve_backend).
    Returns SinkhornResult(assignment (N, K) fp32, hard (N,), sampled (N,)).
    """
    validate_sinkhorn_args(scores, segment_ids, num_segments, eps, iters, tau)
    chosen = resolve_backend(backend, scores.device)
    scores = scores.float()  # fp32 always: bf16 exponentials at 1/eps = 20 are ~8% off
    segment_ids = segment_ids.long()
    if chosen == "triton":
        from posebh_cli.ops.sinkhorn_triton import segmented_sinkhorn_triton

        return segmented_sinkhorn_triton(scores, segment_ids, num_segments, eps, iters, tau, seed)
    log_q_t = segmented_sinkhorn_log_assignment(scores, segment_ids, num_segments, eps, iters)
    hard = argmax_dim0(log_q_t)
    sampled = gumbel_argmax(log_q_t, tau, seed, dim=0)
    return SinkhornResult(assignment=log_q_t.exp().t().contiguous(), hard=hard, sampled=sampled)


def segmented_sinkhorn_log_assignment(
    scores: Tensor, segment_ids: Tensor, num_segments: int, eps: float, iters: int
) -> Tensor:
    """Vectorised torch path: log q^T (K, N) from fp32 scores (N, K), no host syncs.

    segment_ids: (N,) int64. All segments are handled by scatter/gather over segment ids. Works
    prototype-major (K, N): reductions over the K candidates of a pixel are then elementwise ops
    over K long rows, which torch runs far faster on CPU than reductions over a size-3 last dim.
    """
    scores_t = scores.t().contiguous()  # (K, N)
    if iters == 0:
        return torch.log_softmax(scores_t / eps, dim=0)  # no Sinkhorn step: plain row softmax
    num_cols = scores_t.shape[0]
    # Per-segment column max: a column scaling, absorbed by the first prototype step, so it changes
    # nothing but keeps exp() in range and the entries that matter (near the max) accurate in fp32.
    col_max = segment_column_max(scores_t, segment_ids, num_segments)  # (K, J)
    centered = (scores_t - col_max.index_select(1, segment_ids)) / eps  # (K, N) logits <= 0
    # Iteration 1, prototype step on the raw matrix: c_k = 1 / sum_p exp(L_pk).
    col_mass = scores_t.new_zeros((num_cols, num_segments)).index_add_(1, segment_ids,
                                                                        centered.exp())
    log_c = -col_mass.clamp_min(1.0).log()  # (K, J); non-empty segments have mass >= 1
    for _ in range(iters - 1):
        # Pixel step of the previous iteration folded in: rows of A c normalised = pi.
        pi = torch.softmax(centered + log_c.index_select(1, segment_ids), dim=0)  # (K, N)
        col_mass = scores_t.new_zeros((num_cols, num_segments)).index_add_(1, segment_ids, pi)
        log_c = log_c - col_mass.clamp_min(_MIN_COLUMN_MASS).log()  # columns -> equal mass
    # Last pixel step, then each pixel's row scaled to sum to 1.
    return torch.log_softmax(centered + log_c.index_select(1, segment_ids), dim=0)


def segment_column_max(scores_t: Tensor, segment_ids: Tensor, num_segments: int) -> Tensor:
    """(K, J) max of each prototype column within each segment (0 for empty segments)."""
    if num_segments == 1:
        return scores_t.amax(dim=1, keepdim=True) if scores_t.shape[1] else scores_t.new_zeros(
            (scores_t.shape[0], 1))
    col_max = scores_t.new_zeros((scores_t.shape[0], num_segments))
    for k in range(scores_t.shape[0]):  # K 1-D scatters: much faster on CPU than one 2-D scatter
        col_max[k].scatter_reduce_(0, segment_ids, scores_t[k], reduce="amax", include_self=False)
    return col_max


def argmax_dim0(values: Tensor) -> Tensor:
    """(K, N) -> (N,) int64 index of the first maximum over K (what torch.argmax returns)."""
    if values.shape[0] > 8:
        return values.max(dim=0).indices
    # Few candidates (K = M = 3 prototypes): K elementwise passes beat a strided reduction on CPU.
    best, index = values[0], torch.zeros(values.shape[1], dtype=torch.int64, device=values.device)
    for k in range(1, values.shape[0]):
        better = values[k] > best  # strict: ties keep the first index
        index = torch.where(better, k, index)
        best = torch.maximum(best, values[k])
    return index


def gumbel_argmax(log_q: Tensor, tau: float, seed: int | None, dim: int = 1) -> Tensor:
    """Hard Gumbel-softmax sample: argmax_k (log q_k + g_k) / tau, g ~ Gumbel(0, 1), over `dim`.

    log_q: (N, K) with dim=1 or (K, N) with dim=0 -> (N,) int64. Applied to log-probabilities
    (METHOD.md §8 item 3); tau > 0 does not move the argmax. seed None: torch's global RNG.
    """
    generator = None
    if seed is not None:
        generator = torch.Generator(device=log_q.device).manual_seed(int(seed))
    uniform = torch.rand(log_q.shape, generator=generator, device=log_q.device)
    tiny = torch.finfo(torch.float32).tiny
    gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny, max=1.0 - 1e-7)))
    perturbed = (log_q + gumbel) / tau
    return argmax_dim0(perturbed) if dim == 0 else perturbed.argmax(dim=dim)
