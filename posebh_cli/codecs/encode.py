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
    weights = np.asarray(visible, dtype=np.float32).reshape(-1)
    if weights.shape[0] != num_keypoints:
        raise ValueError(f"visible has {weights.shape[0]} entries for {num_keypoints} keypoints")
    weights = np.minimum(np.maximum(weights, 0.0), 1.0)

    centres = keypoints_xy / heatmap_stride(input_size, heatmap_size, method)  # (K, 2) heatmap px
    finite = np.isfinite(centres).all(axis=1)
    centres[~finite] = -1e6  # parked far off the map: weight 0 below
    np.clip(centres, -1e6, 1e6, out=centres)  # keeps the int64 cast below defined
    rounded = np.floor(centres + 0.5).astype(np.int64)  # (K, 2): window centre for both methods
    mu = rounded if method == "msra" else centres  # Gaussian centre
    r = int(3.0 * sigma)  # window radius: integer cells within 3 sigma of the rounded centre
    # The window [rounded - r, rounded + r] must overlap [0, size - 1] on both axes.
    size = np.array([hm_w, hm_h])
    inside = ((rounded - r < size) & (rounded + r >= 0)).all(axis=1)
    weights = np.where(inside, weights, np.float32(0.0))

    # Only the (2r+1)^2 window is non-zero: evaluate the separable Gaussian there (K, 2r+1) per
    # axis and scatter the (K, 2r+1, 2r+1) window products into a zero map. Window cells off the
    # map (or of zero-weight keypoints) are sent to one spare trailing element, so no masking
    # pass is needed and duplicate writes land only there.
    offsets = np.arange(-r, r + 1, dtype=np.int64)
    cells = rounded[:, :, None] + offsets  # (K, 2, 2r+1): window columns (x) and rows (y)
    gauss = np.exp((cells - mu[:, :, None]) ** 2 * (-0.5 / (sigma * sigma))).astype(np.float32)
    values = gauss[:, 1, :, None] * gauss[:, 0, None, :]  # (K, 2r+1 rows, 2r+1 cols)
    ok = (cells >= 0) & (cells < size[None, :, None])  # (K, 2, 2r+1)
    ok[:, 1] &= (weights > 0)[:, None]
    plane = hm_h * hm_w
    trash = num_keypoints * plane
    flat_index = (
        (np.arange(num_keypoints, dtype=np.int64) * plane)[:, None, None]
        + cells[:, 1, :, None] * hm_w
        + cells[:, 0, None, :]
    )
    flat_index[~(ok[:, 1, :, None] & ok[:, 0, None, :])] = trash
    flat = np.zeros(trash + 1, dtype=np.float32)
    flat[flat_index.reshape(-1)] = values.reshape(-1)
    heatmaps = flat[:trash].reshape(num_keypoints, hm_h, hm_w)
    return heatmaps, weights.astype(np.float32, copy=False)
