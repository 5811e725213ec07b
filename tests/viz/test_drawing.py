"""Skeleton overlays and OpenCV figures: colours from the spec, hidden joints, label maps."""

from __future__ import annotations

import numpy as np

from posebh_cli.skeletons import get_skeleton
from posebh_cli.viz.figures import distinct_colors, label_overlay, matrix_figure, scatter_figure
from posebh_cli.viz.skeleton_overlay import bgr, draw_pose


def test_draw_pose_uses_spec_colours_and_hides_low_scores():
    skeleton = get_skeleton("coco")
    image = np.zeros((200, 200, 3), np.uint8)
    keypoints = np.stack([np.linspace(20, 180, 17), np.full(17, 100.0)], axis=1)
    keypoints[3] = (30, 30)
    keypoints[4] = (170, 170)
    scores = np.full(17, 0.9)
    scores[4] = 0.1  # hidden
    draw_pose(image, keypoints, scores, skeleton, threshold=0.3)
    x, y = keypoints[3].astype(int)
    assert tuple(image[y, x]) == bgr(skeleton.keypoint_colors[3])  # RGB spec -> BGR pixel
    x, y = keypoints[4].astype(int)
    assert image[y - 3:y + 4, x - 3:x + 4].max() == 0  # nothing drawn at a hidden joint


def test_bgr_swaps_channels():
    assert bgr(np.array([255, 128, 0])) == (0, 128, 255)


def test_matrix_figure_maps_values_to_viridis_cells():
    figure = matrix_figure(np.array([[0.0, 1.0]]), ["row"], ["lo", "hi"], "t", cell=20)
    assert figure.ndim == 3 and figure.dtype == np.uint8
    # viridis: 0 is dark purple (blue > red in BGR), 1 is yellow (red and green high, blue low).
    yellow = np.all(figure == figure.reshape(-1, 3)[np.argmax(figure.sum(axis=2))], axis=2)
    assert yellow.sum() > 100


def test_scatter_and_label_overlay_shapes():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    figure = scatter_figure(points, np.array([0, 1, 1]), ["a", "b"], "t")
    assert figure.shape[2] == 3 and figure.std() > 0
    image = np.full((40, 60, 3), 100, np.uint8)
    labels = np.zeros((40, 60), np.int64)
    labels[:, 30:] = 1
    colours = distinct_colors(2)
    out = label_overlay(image, labels, np.ones((40, 60)), colours, ["left", "right"], alpha=1.0)
    assert tuple(out[5, 5]) == tuple(colours[0]) and tuple(out[5, 45]) == tuple(colours[1])
    zero = label_overlay(image, labels, np.zeros((40, 60)), colours, ["left", "right"])
    assert np.array_equal(zero[:40, :60], image)  # zero strength leaves the image untouched


def test_distinct_colors_are_distinct():
    colours = distinct_colors(20).astype(int)
    distances = np.abs(colours[:, None] - colours[None]).sum(-1) + np.eye(20, dtype=int) * 999
    assert distances.min() > 0
