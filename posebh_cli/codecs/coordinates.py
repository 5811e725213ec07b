"""Map decoded heatmap coordinates back to image pixels (inverse of the top-down crop).

The crop (posebh_cli.data.affine) sends an image point p to p_in = S R(-theta) (p - c) + o with
  standard: S = diag(W / scale_w, H / scale_h), o = (W / 2, H / 2)
  UDP:      S = diag((W-1) / scale_w, (H-1) / scale_h), o = ((W-1) / 2, (H-1) / 2)
and the codec stride sends heatmap pixels to input pixels (W / w or (W-1) / (w-1)). This module
inverts both: p = c + R(theta) S^-1 (stride * p_hm - o).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def heatmap_to_image(
    coords: torch.Tensor | np.ndarray,
    center: torch.Tensor | np.ndarray,
    scale: torch.Tensor | np.ndarray,
    heatmap_size: tuple[int, int],
    input_size: tuple[int, int],
    udp: bool,
    rotation: torch.Tensor | np.ndarray | float = 0.0,
) -> torch.Tensor | np.ndarray:
    """Heatmap-pixel keypoints -> image-pixel keypoints.

    Args:
        coords: (B, K, 2) (x, y) in heatmap pixels (torch or numpy; the result has the same type).
        center: (B, 2) crop centre in image pixels.
        scale: (B, 2) crop size (w, h) in image pixels (after box padding).
        heatmap_size: (h, w); input_size: (H, W) of the network input.
        udp: True for the UDP affine/stride convention, False for the standard one.
        rotation: crop rotation in degrees, scalar or (B,) (0 at test time).
    Returns:
        (B, K, 2) image coordinates, same library and float dtype as `coords`.
    """
    is_numpy = isinstance(coords, np.ndarray)
    lib_coords = torch.from_numpy(np.asarray(coords, dtype=np.float64)) if is_numpy else coords
    dtype = lib_coords.dtype if lib_coords.is_floating_point() else torch.float32
    device = lib_coords.device

    def as_tensor(value: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value).to(
            device=device, dtype=torch.float64
        )

    points = lib_coords.to(torch.float64)
    c = as_tensor(center).reshape(-1, 1, 2)
    s = as_tensor(scale).reshape(-1, 1, 2)
    (in_h, in_w), (hm_h, hm_w) = input_size, heatmap_size
    if udp:
        stride_xy = [(in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)]
        span_xy = [in_w - 1.0, in_h - 1.0]
    else:
        stride_xy = [in_w / hm_w, in_h / hm_h]
        span_xy = [float(in_w), float(in_h)]
    stride = torch.tensor(stride_xy, device=device, dtype=torch.float64)
    span = torch.tensor(span_xy, device=device, dtype=torch.float64)
    # Input pixels relative to the crop centre, then undo the per-axis scale S.
    local = (points * stride - 0.5 * span) / span * s  # (B, K, 2)
    theta = as_tensor(rotation).reshape(-1, 1) * (math.pi / 180.0)  # (B or 1, 1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # R(theta) in y-down image coordinates undoes the crop's R(-theta).
    x = cos * local[..., 0] - sin * local[..., 1]
    y = sin * local[..., 0] + cos * local[..., 1]
    image_points = torch.stack([x, y], dim=-1) + c
    if is_numpy:
        return image_points.numpy().astype(np.asarray(coords).dtype, copy=False)
    return image_points.to(dtype)
