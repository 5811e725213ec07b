from __future__ import annotations

import math

import numpy as np
import pytest

from posebh_cli.codecs import encode, heatmap_stride

INPUT = (256, 192)
HEATMAP = (64, 48)


def _loop_reference(keypoints_hm, sigma, shape, continuous):
    """Per-keypoint window paste, written independently of the vectorised encoder."""
    h, w = shape
    radius = int(3 * sigma)
    out = np.zeros((len(keypoints_hm), h, w))
    weights = np.ones(len(keypoints_hm))
    for k, (x, y) in enumerate(keypoints_hm):
        mx, my = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
        if mx - radius >= w or my - radius >= h or mx + radius < 0 or my + radius < 0:
            weights[k] = 0
            continue
        cx, cy = (x, y) if continuous else (mx, my)
        for yy in range(max(0, my - radius), min(h, my + radius + 1)):
            for xx in range(max(0, mx - radius), min(w, mx + radius + 1)):
                out[k, yy, xx] = math.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return out, weights


def test_strides():
    assert np.allclose(heatmap_stride(INPUT, HEATMAP, "msra"), [4.0, 4.0])
    assert np.allclose(heatmap_stride(INPUT, HEATMAP, "udp"), [191 / 47, 255 / 63])


def test_msra_closed_form_values_and_rounded_peak():
    # Heatmap location (10.3, 20.6) -> input pixels x 4; MSRA centres on the rounded (10, 21).
    hm, w = encode(np.array([[41.2, 82.4]]), np.array([True]), INPUT, HEATMAP, 2.0, "msra")
    assert hm.shape == (1, 64, 48) and hm.dtype == np.float32 and w.tolist() == [1.0]
    peak = np.unravel_index(np.argmax(hm[0]), hm[0].shape)
    assert peak == (21, 10) and hm[0, 21, 10] == pytest.approx(1.0)
    assert hm[0, 22, 12] == pytest.approx(math.exp(-(4 + 1) / 8), rel=1e-6)
    assert hm[0, 21, 16] == pytest.approx(math.exp(-36 / 8), rel=1e-6)  # window edge (3 sigma)
    assert hm[0, 21, 17] == 0.0 and hm[0, 28, 10] == 0.0  # just outside the 13x13 window
    assert np.count_nonzero(hm[0]) == 13 * 13


def test_udp_closed_form_continuous_centre():
    stride = heatmap_stride(INPUT, HEATMAP, "udp")
    centre = np.array([10.3, 20.6])
    hm, _ = encode((centre * stride)[None], np.ones(1), INPUT, HEATMAP, 2.0, "udp")
    for y, x in [(21, 10), (20, 11), (23, 8), (27, 16)]:
        expected = math.exp(-((x - 10.3) ** 2 + (y - 20.6) ** 2) / 8)
        assert hm[0, y, x] == pytest.approx(expected, rel=1e-5)
    assert hm[0, 21, 17] == 0.0  # the window is still anchored at the rounded centre


@pytest.mark.parametrize("method", ["msra", "udp"])
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_vectorised_encoder_matches_loop_reference(method, sigma):
    rng = np.random.default_rng(3)
    # Include keypoints near and beyond every border.
    kps_input = rng.uniform([-40, -40], [232, 296], size=(60, 2))
    hm, w = encode(kps_input, np.ones(60), INPUT, HEATMAP, sigma, method)
    ref, ref_w = _loop_reference(
        kps_input / heatmap_stride(INPUT, HEATMAP, method), sigma, HEATMAP, method == "udp"
    )
    np.testing.assert_allclose(hm, ref, atol=1e-6)
    np.testing.assert_array_equal(w, ref_w)
    assert 0 < w.sum() < 60  # the sample really has both kinds


def test_invisible_and_outside_keypoints_get_zero_weight_and_map():
    kps = np.array([[50.0, 60.0], [50.0, 60.0], [-60.0, 10.0], [10.0, 400.0], [-10.0, 30.0]])
    visible = np.array([1, 0, 1, 1, 1], dtype=np.float32)
    hm, w = encode(kps, visible, INPUT, HEATMAP, 2.0, "udp")
    assert w.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]  # the last one is off-crop but its window is not
    assert hm[1].max() == 0 and hm[2].max() == 0 and hm[3].max() == 0
    assert hm[4].max() > 0


def test_soft_visibility_becomes_weight_and_nan_is_dropped():
    kps = np.array([[50.0, 60.0], [np.nan, 3.0], [40.0, 40.0]])
    hm, w = encode(kps, np.array([0.4, 1.0, 2.0]), INPUT, HEATMAP, 2.0, "msra")
    np.testing.assert_allclose(w, [0.4, 0.0, 1.0])
    assert np.isfinite(hm).all() and hm[1].max() == 0
