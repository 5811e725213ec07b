"""Flip-test support: mirror predicted heatmaps of a flipped crop back onto the original crop.

Shift convention: the image flip maps input pixel x to W - 1 - x.
- UDP (stride (W-1)/(w-1)): heatmap x maps to w - 1 - x exactly, so mirroring the heatmap is the
  exact inverse: `shift=False`.
- MSRA (stride W/w): heatmap x maps to w - 1/s - x (s = stride), so the mirrored heatmap sits
  (1 - 1/s) px = 0.75 px (s = 4) to the left; shifting it right by one pixel leaves +0.25 px, the
  convention every MSRA/SimpleBaseline flip test uses: `shift=True`.
"""

from __future__ import annotations

import numpy as np
import torch


def flip_back(
    heatmaps: torch.Tensor, flip_index: np.ndarray | torch.Tensor | list[int], shift: bool
) -> torch.Tensor:
    """Heatmaps predicted on a mirrored crop, expressed in the unmirrored crop.

    Args:
        heatmaps: (B, K, h, w).
        flip_index: (K,) permutation, i -> index of its mirror keypoint (left <-> right).
        shift: True for MSRA heads (move one pixel right after mirroring), False for UDP heads.
    Returns:
        (B, K, h, w) new tensor; channel i holds the mirror of input channel flip_index[i].
    """
    index = torch.as_tensor(np.asarray(flip_index), dtype=torch.long, device=heatmaps.device)
    if index.numel() != heatmaps.shape[1]:
        raise ValueError(
            f"flip_index has {index.numel()} entries for {heatmaps.shape[1]} heatmap channels"
        )
    flipped = heatmaps.flip(-1).index_select(1, index)
    if shift:
        flipped[..., 1:] = flipped[..., :-1].clone()
    return flipped
