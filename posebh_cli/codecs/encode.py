"""Heatmap target encoders (numpy, run in data workers): MSRA and UDP Gaussians (METHOD.md §4).

Both build a (K, h, w) stack of 2-D Gaussians truncated to a (6 sigma + 1)^2 window (13x13 at
sigma 2) around the keypoint's rounded heatmap location. A square window times a separable
Gaussian is itself separable, so each heatmap is the outer product of a (K, h) column profile and
a (K, w) row profile: one broadcast multiply for all K keypoints instead of a Python loop.

- MSRA (SimpleBaseline): the keypoint is quantised to the nearest heatmap pixel and the Gaussian is
  centred there; stride = input / heatmap (4 at 256x192 -> 64x48).
- UDP (unbiased data processing): stride = (input - 1) / (heatmap - 1), so the first and last pixel
  centres of input and heatmap coincide, and the Gaussian is centred at the continuous location.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

EncodeMethod = Literal["msra", "udp"]
ENCODE_METHODS: tuple[str, ...] = ("msra", "udp")


def heatmap_stride(
    input_size: tuple[int, int], heatmap_size: tuple[int, int], method: str
) -> np.ndarray:
    """Input pixels per heatmap pixel as (x, y): W/w for MSRA, (W-1)/(w-1) for UDP."""
    (in_h, in_w), (hm_h, hm_w) = input_size, heatmap_size
    if method == "udp":
        return np.array([(in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)], dtype=np.float64)
    if method == "msra":
        return np.array([in_w / hm_w, in_h / hm_h], dtype=np.float64)
    raise ValueError(f"unknown heatmap encoding {method!r}; expected one of {ENCODE_METHODS}")


def encode(
    keypoints_xy: np.ndarray,
    visible: np.ndarray,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
    method: EncodeMethod = "udp",
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmap targets for one instance.

    Args:
        keypoints_xy: (K, 2) keypoint (x, y) in INPUT-image (crop) pixels.
        visible: (K,) bool or float; the weight is clip(visible, 0, 1), so pass `v > 0` for COCO
            visibility flags and a confidence for soft (pseudo) labels.
        input_size: (H, W) of the network input, e.g. (256, 192).
        heatmap_size: (h, w) of the heatmaps, e.g. (64, 48).
        sigma: Gaussian standard deviation in heatmap pixels; the window radius is 3 sigma.
        method: "msra" (quantised centre) or "udp" (continuous centre).

    Returns:
        heatmaps: (K, h, w) float32, peak 1 at the (rounded) centre, 0 outside the window and for
            keypoints with weight 0.
        weights: (K,) float32, 0 when invisible or when the window lies entirely off the heatmap.
    """
    keypoints_xy = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2)
    num_keypoints = keypoints_xy.shape[0]
    hm_h, hm_w = heatmap_size
    weights = np.clip(np.asarray(visible, dtype=np.float32).reshape(-1), 0.0, 1.0)
    if weights.shape[0] != num_keypoints:
        raise ValueError(f"visible has {weights.shape[0]} entries for {num_keypoints} keypoints")

    centres = keypoints_xy / heatmap_stride(input_size, heatmap_size, method)  # (K, 2) heatmap px
    radius = 3.0 * sigma
    with np.errstate(invalid="ignore"):
        rounded = np.floor(centres + 0.5)  # (K, 2): the window centre for both methods
    finite = np.isfinite(rounded).all(axis=1)
    rounded = np.where(finite[:, None], rounded, 0.0)
    # Window [rounded - r, rounded + r] must overlap [0, size - 1] (mmpose/SimpleBaseline rule).
    inside = (
        finite
        & (rounded[:, 0] - radius < hm_w)
        & (rounded[:, 1] - radius < hm_h)
        & (rounded[:, 0] + radius + 1 > 0)
        & (rounded[:, 1] + radius + 1 > 0)
    )
    weights = np.where(inside, weights, 0.0).astype(np.float32)

    mu = rounded if method == "msra" else np.where(finite[:, None], centres, 0.0)
    xs = np.arange(hm_w, dtype=np.float64)
    ys = np.arange(hm_h, dtype=np.float64)
    dx = xs[None, :] - mu[:, 0:1]  # (K, w)
    dy = ys[None, :] - mu[:, 1:2]  # (K, h)
    inv_two_var = 1.0 / (2.0 * sigma * sigma)
    # Window membership is measured from the rounded centre in both methods.
    row = np.exp(-dx * dx * inv_two_var) * (np.abs(xs[None, :] - rounded[:, 0:1]) <= radius)
    col = np.exp(-dy * dy * inv_two_var) * (np.abs(ys[None, :] - rounded[:, 1:2]) <= radius)
    col *= (weights > 0)[:, None]  # zero heatmap wherever the weight is zero
    heatmaps = col.astype(np.float32)[:, :, None] * row.astype(np.float32)[:, None, :]
    return heatmaps, weights
