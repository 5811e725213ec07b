"""Follow one instance through a video without a detector: the next frame's box comes from the
current frame's confident keypoints, and falls back to the whole frame when confidence drops.

Top-down pose needs a box per frame. Between consecutive frames an instance moves little, so the
box around this frame's keypoints (grown by a margin, since keypoints sit inside the body's
extent) is a good crop for the next frame; when too few keypoints are confident the instance is
considered lost and the crop re-initialises to the full frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class KeypointBoxTracker:
    """frame_size: (W, H). A keypoint is confident when its score >= score_threshold; the track
    is kept while at least min_keypoints are confident and their mean score >= min_mean_score.
    margin: fraction of the keypoints' box added on each side; min_size: smallest box side as a
    fraction of the frame's shorter side (a collapsed box would zoom on noise)."""

    frame_size: tuple[int, int]
    score_threshold: float = 0.3
    min_keypoints: int = 3
    min_mean_score: float = 0.3
    margin: float = 0.15
    min_size: float = 0.1

    def __post_init__(self) -> None:
        self.box = self.full_frame()
        self.tracking = False

    def full_frame(self) -> np.ndarray:
        """(4,) xywh covering the whole frame."""
        width, height = self.frame_size
        return np.array([0.0, 0.0, float(width), float(height)])

    def reset(self) -> None:
        self.box, self.tracking = self.full_frame(), False

    def update(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """keypoints (K, 2), scores (K,) of this frame -> the next frame's box (4,) xywh."""
        confident = scores >= self.score_threshold
        if confident.sum() < self.min_keypoints or scores[confident].mean() < self.min_mean_score:
            self.reset()
            return self.box
        points = keypoints[confident]
        low, high = points.min(axis=0), points.max(axis=0)
        size = high - low
        width, height = self.frame_size
        floor = self.min_size * min(width, height)
        size = np.maximum(size * (1.0 + 2.0 * self.margin), floor)
        center = 0.5 * (low + high)
        x0, y0 = np.clip(center - 0.5 * size, 0.0, [width, height])
        x1, y1 = np.clip(center + 0.5 * size, 0.0, [width, height])
        if x1 - x0 < 1.0 or y1 - y0 < 1.0:  # keypoints outside the frame: lost
            self.reset()
            return self.box
        self.box, self.tracking = np.array([x0, y0, x1 - x0, y1 - y0]), True
        return self.box
