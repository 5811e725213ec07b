"""Prototype-learning ops: segmented Sinkhorn-Knopp and the prototype momentum update.

Torch reference paths (vectorised, also used for CPU training) and fused Triton kernels behind the
same functions; see posebh_cli.ops.backend for how the implementation is chosen.
"""

from __future__ import annotations

from posebh_cli.ops.prototype_update import momentum_update_prototypes
from posebh_cli.ops.sinkhorn import (
    GUMBEL_TAU,
    SINKHORN_EPS,
    SINKHORN_ITERS,
    SinkhornResult,
    segmented_sinkhorn,
)

__all__ = ["GUMBEL_TAU", "SINKHORN_EPS", "SINKHORN_ITERS", "SinkhornResult",
           "momentum_update_prototypes", "segmented_sinkhorn"]
