"""Textured backgrounds and clutter, so figures are not found by colour contrast alone.

Gradients plus low-frequency colour noise stand in for scenes; clutter adds edges, blobs and
limb-like sticks (the distractors a pose model meets in photos). Vectorised numpy + OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)  # (h, w) in [0, 1]
    return a + ramp[..., None] * (b - a)  # (h, w, 3)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    grid = rng.uniform(-1, 1, size=(cells, cells, 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)  # (h, w, 3)


def textured_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 BGR: gradient + coarse and fine colour noise (grain comes later, with
    the camera noise). Built at quarter resolution and upsampled: it is smooth anyway."""
    small_h, small_w = max(2, h // 4), max(2, w // 4)
    image = _gradient(rng, small_h, small_w)
    image += rng.uniform(20, 70) * _smooth_noise(rng, small_h, small_w,
                                                 int(rng.integers(2, 6)))
    image += rng.uniform(5, 35) * _smooth_noise(rng, small_h, small_w,
                                                int(rng.integers(8, 32)))
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_clutter(rng: np.random.Generator, image: np.ndarray, count: int,
                 stick_width: tuple[int, int]) -> None:
    """Draw `count` random lines, sticks, discs, rectangles and polygons onto `image` in place.

    stick_width: (min, max) pixel thickness of limb-like sticks, matched to the figures' limbs.
    """
    h, w = image.shape[:2]
    for _ in range(count):
        color = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        kind = rng.integers(0, 5)
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        size = float(rng.uniform(0.03, 0.25) * min(h, w))
        if kind == 0:  # long thin line
            angle = rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * size * 2, np.sin(angle) * size * 2
            cv2.line(image, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), color,
                     int(rng.integers(1, 3)), cv2.LINE_AA)
        elif kind == 1:  # limb-like stick, sometimes bent
            n = int(rng.integers(2, 4))
            steps = rng.normal(0, size * 0.6, size=(n, 2)).cumsum(axis=0) + [x, y]
            cv2.polylines(image, [np.round(steps).astype(np.int32)], False, color,
                          int(rng.integers(stick_width[0], stick_width[1] + 1)), cv2.LINE_AA)
        elif kind == 2:
            cv2.circle(image, (int(x), int(y)), int(size * 0.5) + 1, color,
                       -1 if rng.random() < 0.6 else 2, cv2.LINE_AA)
        elif kind == 3:
            cv2.rectangle(image, (int(x), int(y)), (int(x + size), int(y + size * rng.uniform(
                0.3, 2))), color, -1 if rng.random() < 0.6 else 2, cv2.LINE_AA)
        else:
            cv2.fillPoly(image, [random_polygon(rng, x, y, size * 0.6)], color, cv2.LINE_AA)


def random_polygon(rng: np.random.Generator, x: float, y: float, radius: float) -> np.ndarray:
    """(n, 2) int32 star-shaped polygon around (x, y) with 3..8 vertices."""
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=n))
    radii = radius * rng.uniform(0.5, 1.0, size=n)
    points = np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], axis=1)
    return np.round(points).astype(np.int32)
