"""The keypoint prototype table and prototype heatmaps (METHOD.md §1).

P has shape (J, M, F): M unit vectors per global keypoint type. It is a buffer (learned by
Sinkhorn + momentum, METHOD.md §2, never by gradient). Similarities are computed in fp32 with
autocast off: they feed exp(s / eps) with 1/eps = 20 (PERF.md: bf16 gives ~8% error there) and the
clamp to [1e-4, 1 - 1e-4] is below bf16 resolution near 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PHM_MIN = 1e-4
PHM_MAX = 1.0 - 1e-4


def random_unit_prototypes(
    num_types: int, num_prototypes: int, dim: int, seed: int = 0
) -> Tensor:
    """(J, M, F) random unit vectors, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(num_types, num_prototypes, dim, generator=generator)
    return F.normalize(table, dim=-1)


class PrototypeTable(nn.Module):
    """Buffer `prototypes` (J, M, F), unit-normalised; similarity and prototype heatmaps."""

    prototypes: Tensor

    def __init__(self, num_types: int, num_prototypes: int = 3, dim: int = 64, seed: int = 0):
        super().__init__()
        self.register_buffer("prototypes", random_unit_prototypes(num_types, num_prototypes, dim,
                                                                  seed))

    @property
    def num_types(self) -> int:
        return self.prototypes.shape[0]

    @property
    def num_prototypes(self) -> int:
        return self.prototypes.shape[1]

    @torch.no_grad()
    def set_prototypes(self, prototypes: Tensor) -> None:
        """Replace the table (after a momentum update), keeping it unit-normalised."""
        if prototypes.shape != self.prototypes.shape:
            raise ValueError(
                f"prototypes must be {tuple(self.prototypes.shape)}, got {tuple(prototypes.shape)}"
            )
        self.prototypes.copy_(F.normalize(prototypes.float(), dim=-1))

    def similarity(self, embeddings: Tensor, type_ids: Tensor) -> Tensor:
        """|cos| between pixel embeddings and the prototypes of the given types (METHOD.md §1).

        embeddings: (B, F, H, W); type_ids: (T,) int64 global type ids.
        Returns (B, T, M, H, W) fp32 in [0, 1]; differentiable w.r.t. the embeddings.
        Its memory is laid out (B, H, W, T, M) (a permuted view): that is what one GEMM of
        pixels by prototypes writes, and every consumer reduces over M, T or both per pixel
        (prototype heatmaps, argmax classes, PPC logits), which is fast over the innermost
        dimensions and slow across pixel planes.
        """
        with torch.autocast(embeddings.device.type, enabled=False):
            unit = F.normalize(embeddings.float(), dim=1)  # (B, F, H, W)
            protos = self.prototypes[type_ids].float()  # (T, M, F)
            pixels_first = torch.einsum("bfhw,tmf->bhwtm", unit, protos).abs()
            return pixels_first.permute(0, 3, 4, 1, 2)

    def heatmaps(self, embeddings: Tensor, type_ids: Tensor) -> Tensor:
        """Prototype heatmaps phm (B, T, H, W) = clamp(max_m |cos|, 1e-4, 1 - 1e-4), fp32."""
        return similarity_to_heatmaps(self.similarity(embeddings, type_ids))


def similarity_to_heatmaps(similarity: Tensor) -> Tensor:
    """(B, T, M, H, W) -> (B, T, H, W): best prototype per type, clamped away from 0 and 1."""
    return similarity.amax(dim=2).clamp(PHM_MIN, PHM_MAX)
