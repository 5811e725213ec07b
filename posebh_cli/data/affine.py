"""Top-down crop geometry: box -> (center, scale), the crop's affine matrix, point transforms.

Conventions (all in image pixels, (x, y), pixel centres at integers):
- `scale` is the crop size (w, h) in image pixels (not the legacy /200 units).
- The crop matrix sends an image point p to p_in = S R(-theta) (p - c) + o, where R(-theta) is
  OpenCV's rotation convention (positive theta turns the image content counter-clockwise):
    standard: S = diag(W / scale_w, H / scale_h), o = (W / 2, H / 2);
    UDP:      S = diag((W-1) / scale_w, (H-1) / scale_h), o = ((W-1) / 2, (H-1) / 2), i.e. the
              first and last pixel centres of the crop span exactly `scale` (unbiased data
              processing, so flips and resizes are exact on pixel centres).
- A horizontal image flip is x -> image_width - 1 - x, composed into the matrix so each sample
  costs one warpAffine of the original image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def box_to_center_scale(
    boxes_xywh: np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Crop centre and size of boxes, aspect ratio fixed to the network input's W / H.

    Args:
        boxes_xywh: (..., 4) x, y, w, h.
        aspect_ratio: input W / H (0.75 for 256x192).
        padding: context factor applied to both sides after fixing the aspect (METHOD.md §4).
    Returns:
        center: (..., 2); scale: (..., 2) crop (w, h) in pixels with w / h == aspect_ratio.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64)
    xy, wh = boxes[..., :2], boxes[..., 2:]
    center = xy + 0.5 * wh
    # Grow the short side so the crop always contains the whole box:
    # w' = max(w, h * aspect), h' = max(h, w / aspect).
    scale = np.maximum(wh, wh[..., ::-1] * np.array([aspect_ratio, 1.0 / aspect_ratio]))
    scale *= padding
    return center, scale


def warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: float,
    output_size: tuple[int, int],
    udp: bool,
) -> np.ndarray:
    """(2, 3) float64 matrix mapping image pixels into the (H, W) = output_size crop."""
    out_h, out_w = output_size
    # UDP spans pixel centres (size - 1); the standard crop spans pixel edges (size).
    span = np.array([out_w - 1.0, out_h - 1.0]) if udp else np.array([float(out_w), float(out_h)])
    s = span / np.asarray(scale, dtype=np.float64)
    theta = math.radians(rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    linear = np.array([[cos, sin], [-sin, cos]]) * s[:, None]  # S @ R(-theta)
    offset = 0.5 * span - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, offset[:, None]], axis=1)


def flip_matrix(image_width: int) -> np.ndarray:
    """(2, 3) matrix of the horizontal mirror x -> image_width - 1 - x."""
    return np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) matrix of p -> outer(inner(p))."""
    linear = outer[:, :2] @ inner[:, :2]
    offset = outer[:, :2] @ inner[:, 2] + outer[:, 2]
    return np.concatenate([linear, offset[:, None]], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """(2, 3) inverse of a (2, 3) affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points_xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points (..., 2); returns float64 (..., 2)."""
    points = np.asarray(points_xy, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Crop (H, W, C) uint8 out of `image` with bilinear sampling; constant 0 outside."""
    out_h, out_w = output_size
    return cv2.warpAffine(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
