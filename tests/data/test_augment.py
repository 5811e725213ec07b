from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.data.augment import (
    AugmentConfig,
    flip_keypoints,
    half_body_center_scale,
    sample_scale_rotation,
)


def test_flip_keypoints_mirrors_and_swaps():
    kps = np.array([[10.0, 1.0, 2.0], [20.0, 2.0, 1.0], [30.0, 3.0, 0.0]])
    out = flip_keypoints(kps, np.array([0, 2, 1]), image_width=100)
    np.testing.assert_allclose(out, [[89, 1, 2], [69, 3, 0], [79, 2, 1]])
    twice = flip_keypoints(out, np.array([0, 2, 1]), image_width=100)
    np.testing.assert_allclose(twice, kps)


def _body(upper_visible: int, lower_visible: int) -> np.ndarray:
    kps = np.zeros((10, 3))
    kps[:5, :2] = [[10, 10], [20, 12], [30, 14], [40, 16], [50, 40]]
    kps[5:, :2] = [[12, 100], [20, 120], [30, 140], [40, 160], [46, 180]]
    kps[:upper_visible, 2] = 2
    kps[5 : 5 + lower_visible, 2] = 2
    return kps


def test_half_body_only_upper_available():
    kps = _body(upper_visible=5, lower_visible=1)
    rng = np.random.default_rng(0)
    center, scale = half_body_center_scale(kps, np.arange(5), 0.75, rng, padding=1.5)
    np.testing.assert_allclose(center, kps[:5, :2].mean(axis=0))
    # joints span 40 x 30 -> aspect 0.75 -> 40 x 53.33 -> x 1.5
    np.testing.assert_allclose(scale, [60.0, 80.0])


def test_half_body_lower_and_none():
    kps = _body(upper_visible=2, lower_visible=5)
    center, scale = half_body_center_scale(kps, np.arange(5), 0.75, np.random.default_rng(0))
    np.testing.assert_allclose(center, kps[5:, :2].mean(axis=0))
    np.testing.assert_allclose(scale, [90.0, 120.0])  # 34 x 80 -> 60 x 80 -> x 1.5
    assert half_body_center_scale(_body(1, 0), np.arange(5), 0.75, np.random.default_rng(0)) is None


def test_half_body_picks_both_halves_about_equally():
    kps = _body(5, 5)
    rng = np.random.default_rng(1)
    upper = sum(
        half_body_center_scale(kps, np.arange(5), 0.75, rng)[0][1] < 50 for _ in range(2000)
    )
    assert 900 < upper < 1100


def test_scale_and_rotation_distribution():
    cfg = AugmentConfig()
    rng = np.random.default_rng(2)
    draws = np.array([sample_scale_rotation(rng, cfg) for _ in range(20000)])
    scale, rot = draws[:, 0], draws[:, 1]
    assert scale.min() >= 0.5 and scale.max() <= 1.5
    assert rot.min() >= -80 and rot.max() <= 80
    assert (rot == 0).mean() == pytest.approx(0.4, abs=0.02)
    assert scale.mean() == pytest.approx(1.0, abs=0.01)
    # clip(N(1, 0.5)) at +-1 sigma keeps ~68% strictly inside
    assert ((scale > 0.5) & (scale < 1.5)).mean() == pytest.approx(0.683, abs=0.015)
    assert (np.abs(rot[rot != 0]) < 80).mean() == pytest.approx(0.954, abs=0.01)
