"""Test oracles: the straightforward per-type Sinkhorn loop of METHOD.md §2 step 3 (SwAV-style)."""

from __future__ import annotations

import torch
from torch import Tensor


def swav_sinkhorn_one_type(scores: Tensor, eps: float, iters: int) -> Tensor:
    """SwAV's Sinkhorn-Knopp on one type's (n, K) scores, in float64. Returns q (n, K)."""
    q = torch.exp((scores.double() - scores.double().max()) / eps).t()  # (K, n)
    num_protos, num_pixels = q.shape
    q = q / q.sum()
    for _ in range(iters):
        q = q / q.sum(dim=1, keepdim=True) / num_protos  # each prototype's mass -> 1/K
        q = q / q.sum(dim=0, keepdim=True) / num_pixels  # each pixel's mass -> 1/n
    q = q / q.sum(dim=0, keepdim=True)  # each pixel's row sums to 1
    return q.t()


def log_domain_sinkhorn_one_type(scores: Tensor, eps: float, iters: int) -> Tensor:
    """The same iterations on log-scalings (float64): exact where exp would underflow."""
    logits = scores.double() / eps  # (n, K)
    log_r = torch.zeros(logits.shape[0], dtype=torch.float64)
    log_c = torch.zeros(logits.shape[1], dtype=torch.float64)
    for _ in range(iters):
        log_c = -torch.logsumexp(logits + log_r[:, None], dim=0)
        log_r = -torch.logsumexp(logits + log_c[None, :], dim=1)
    return torch.softmax(logits + log_c[None, :], dim=1)


def per_type_loop(
    scores: Tensor, segment_ids: Tensor, num_segments: int, eps: float, iters: int, oracle=None
) -> Tensor:
    """The reference's way: a Python loop over types, masking that type's pixels each time."""
    oracle = oracle or swav_sinkhorn_one_type
    out = torch.zeros(scores.shape, dtype=torch.float64)
    for segment in range(num_segments):
        mask = segment_ids == segment
        if mask.any():
            out[mask] = oracle(scores[mask], eps, iters)
    return out
