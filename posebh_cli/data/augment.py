"""Random training augmentation for top-down crops (METHOD.md §4).

All randomness comes from the `numpy.random.Generator` passed in, and every function draws a
fixed number of values in a fixed order, so one seed reproduces one sample exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebh_cli.data.affine import box_to_center_scale


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation constants; defaults are the reference ones (METHOD.md §4)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3  # 0 disables half-body (e.g. MPII)
    half_body_min_joints: int = 8  # visible joints needed before half-body may trigger
    half_body_padding: float = 1.5
    scale_sigma: float = 0.5  # scale factor ~ clip(N(1, sigma), 1 - sigma, 1 + sigma)
    rotation_sigma: float = 40.0  # degrees ~ clip(N(0, sigma), -2 sigma, 2 sigma)
    rotation_prob: float = 0.6
    center_jitter: float = 0.0  # max shift as a fraction of the crop size; 0 = off


def flip_keypoints(keypoints: np.ndarray, flip_index: np.ndarray, image_width: int) -> np.ndarray:
    """Mirror (K, 3) keypoints (x, y, v) about the image's vertical axis and swap left/right.

    x -> image_width - 1 - x, then keypoint i takes the row of its mirror flip_index[i].
    """
    flipped = np.array(keypoints, dtype=np.float64, copy=True)
    flipped[:, 0] = image_width - 1 - flipped[:, 0]
    return flipped[np.asarray(flip_index)]


def half_body_center_scale(
    keypoints: np.ndarray,
    upper_body: np.ndarray,
    aspect_ratio: float,
    rng: np.random.Generator,
    padding: float = 1.5,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Crop around the visible upper or lower body; None when neither half has >= 2 points.

    Args:
        keypoints: (K, 3) (x, y, v); v > 0 counts as visible.
        upper_body: ids of the upper-body keypoints; every other id is lower body.
        aspect_ratio: input W / H.
    Returns:
        (center (2,), scale (2,)) in pixels, or None.
    """
    visible = keypoints[:, 2] > 0
    is_upper = np.zeros(keypoints.shape[0], dtype=bool)
    is_upper[np.asarray(upper_body, dtype=np.int64)] = True
    upper = keypoints[visible & is_upper, :2]
    lower = keypoints[visible & ~is_upper, :2]
    # One draw, always made, so the generator's position does not depend on the data.
    prefer_upper = rng.random() < 0.5
    # Preferred half when it has > 2 joints, else the other one if it does, else upper.
    if prefer_upper and len(upper) > 2:
        selected = upper
    elif len(lower) > 2:
        selected = lower
    else:
        selected = upper
    if len(selected) < 2:
        return None
    low, high = selected.min(axis=0), selected.max(axis=0)
    box = np.array([low[0], low[1], high[0] - low[0], high[1] - low[1]])
    _, scale = box_to_center_scale(box, aspect_ratio, padding)
    # Centre on the joints' mean, not the box middle (the half-body convention).
    return selected.mean(axis=0), scale


def sample_scale_rotation(rng: np.random.Generator, config: AugmentConfig) -> tuple[float, float]:
    """Scale factor clip(N(1, s), 1 - s, 1 + s) and rotation clip(N(0, r), -2r, 2r) degrees with
    probability rotation_prob, else 0. Always draws three values."""
    s, r = config.scale_sigma, config.rotation_sigma
    scale_factor = float(np.clip(rng.normal(1.0, s), 1.0 - s, 1.0 + s))
    rotation = float(np.clip(rng.normal(0.0, r), -2.0 * r, 2.0 * r))
    if rng.random() >= config.rotation_prob:
        rotation = 0.0
    return scale_factor, rotation
