from __future__ import annotations

import cv2
import numpy as np
import pytest

from posebh_cli.data.affine import (
    box_to_center_scale,
    compose_affine,
    flip_matrix,
    invert_affine,
    transform_points,
    warp_image,
    warp_matrix,
)

INPUT = (256, 192)


def test_box_to_center_scale_known_answers():
    center, scale = box_to_center_scale(np.array([10.0, 20.0, 30.0, 80.0]), 0.75, 1.25)
    assert center.tolist() == [25.0, 60.0]
    assert scale.tolist() == [75.0, 100.0]  # tall box: width grows to 60, then x 1.25
    center, scale = box_to_center_scale(np.array([[0.0, 0.0, 90.0, 60.0]]), 0.75, 1.0)
    assert center.tolist() == [[45.0, 30.0]] and scale.tolist() == [[90.0, 120.0]]


@pytest.mark.parametrize("udp", [True, False])
def test_centre_and_span_mapping(udp):
    c, s = np.array([300.0, 200.0]), np.array([150.0, 200.0])
    m = warp_matrix(c, s, 0.0, INPUT, udp)
    edges = np.array([c - s / 2, c, c + s / 2])
    out = transform_points(edges, m)
    if udp:  # pixel centres: c +- s/2 land on the first and last pixel centre
        np.testing.assert_allclose(out, [[0, 0], [95.5, 127.5], [191, 255]], atol=1e-9)
    else:  # pixel edges: c +- s/2 land on 0 and W
        np.testing.assert_allclose(out, [[0, 0], [96, 128], [192, 256]], atol=1e-9)


def test_rotation_follows_opencv_convention():
    c = np.array([50.0, 70.0])
    m = warp_matrix(c, np.array([192.0, 256.0]), 30.0, INPUT, udp=False)  # unit scale
    np.testing.assert_allclose(m[:, :2], cv2.getRotationMatrix2D((50.0, 70.0), 30.0, 1.0)[:, :2])


@pytest.mark.parametrize("udp", [True, False])
def test_forward_then_back_within_1e3_px(udp):
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.uniform(0, 1000, 2)
        s = rng.uniform(20, 800) * np.array([0.75, 1.0])
        m = warp_matrix(c, s, rng.uniform(-80, 80), INPUT, udp)
        m = compose_affine(m, flip_matrix(1000)) if rng.random() < 0.5 else m
        pts = rng.uniform(-100, 1100, size=(17, 2))
        back = transform_points(transform_points(pts, m), invert_affine(m))
        assert np.abs(back - pts).max() < 1e-3


def test_flip_matrix_and_composition():
    f = flip_matrix(640)
    np.testing.assert_allclose(transform_points([[0.0, 5.0], [639.0, 7.0]], f), [[639, 5], [0, 7]])
    a = warp_matrix(np.array([100.0, 100.0]), np.array([60.0, 80.0]), 10.0, INPUT, True)
    pts = np.array([[120.0, 90.0], [3.0, 4.0]])
    np.testing.assert_allclose(
        transform_points(pts, compose_affine(a, f)),
        transform_points(transform_points(pts, f), a),
    )


@pytest.mark.parametrize("udp", [True, False])
def test_warp_image_puts_pixels_where_points_go(udp):
    image = np.zeros((480, 640, 3), np.uint8)
    image[300:303, 400:403] = (10, 200, 90)  # a 3x3 dot centred at (401, 301)
    m = warp_matrix(np.array([380.0, 280.0]), np.array([120.0, 160.0]), 25.0, INPUT, udp)
    crop = warp_image(image, m, INPUT)
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    x, y = np.rint(transform_points([[401.0, 301.0]], m)[0]).astype(int)
    assert crop[y, x].tolist() == [10, 200, 90]
    assert crop[0, 0].tolist() == [0, 0, 0]
