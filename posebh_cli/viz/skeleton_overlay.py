"""Skeleton overlays: links and keypoints coloured by the skeleton spec, low scores hidden."""

from __future__ import annotations

import cv2
import numpy as np

from posebh_cli.skeletons import Skeleton

DEFAULT_SCORE_THRESHOLD = 0.3


def bgr(color_rgb: np.ndarray) -> tuple[int, int, int]:
    """An RGB triple (the skeleton specs' convention) as OpenCV's BGR ints."""
    r, g, b = (int(v) for v in color_rgb)
    return (b, g, r)


def draw_pose(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, skeleton: Skeleton,
              *, threshold: float = DEFAULT_SCORE_THRESHOLD, box: np.ndarray | None = None,
              label: str | None = None) -> np.ndarray:
    """Draw one instance on `image` (H, W, 3) uint8 BGR in place and return it.

    keypoints: (K, 2) image px; scores: (K,); joints scoring below `threshold` and links touching
    them are hidden. box: optional (4,) xywh drawn in grey with `label` above it.
    """
    height, width = image.shape[:2]
    scale = max(1.0, min(height, width) / 360.0)
    radius, thickness = max(2, round(3 * scale)), max(1, round(2 * scale))
    shown = (scores >= threshold) & np.all(np.isfinite(keypoints), axis=1)
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(image, (x, y), (x + w, y + h), (160, 160, 160), 1, cv2.LINE_AA)
        if label:
            cv2.putText(image, label, (x + 2, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4 * scale, (230, 230, 230), 1, cv2.LINE_AA)
    points = np.round(keypoints).astype(np.int64)
    for (a, b), color in zip(skeleton.links, skeleton.link_colors):
        if shown[a] and shown[b]:
            cv2.line(image, tuple(map(int, points[a])), tuple(map(int, points[b])), bgr(color),
                     thickness, cv2.LINE_AA)
    for k in np.flatnonzero(shown):
        cv2.circle(image, tuple(map(int, points[k])), radius,
                   bgr(skeleton.keypoint_colors[k]), -1, cv2.LINE_AA)
    return image
