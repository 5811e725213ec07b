"""MPII PCKh on hand-computed cases (METHOD.md §5-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.pckh import head_sizes, mpii_report, pckh


def test_head_size_is_sc_bias_times_diagonal():
    # 30 x 40 head box: diagonal 50, x 0.6 = 30 px.
    np.testing.assert_allclose(head_sizes(np.array([[10, 20, 40, 60]])), [30.0])
    with pytest.raises(PosebhError, match="head boxes"):
        head_sizes(np.ones((2, 3)))


def test_pckh_threshold_is_inclusive_and_pelvis_thorax_leave_the_mean():
    gt = np.zeros((1, 16, 2))
    pred = np.zeros((1, 16, 2))
    pred[0, 0] = [15.0, 0.0]    # exactly 0.5 x 30 px: correct (<=)
    pred[0, 1] = [15.5, 0.0]    # just over: wrong
    pred[0, 6] = [100.0, 0.0]   # pelvis wrong, but left out of the mean
    pred[0, 7] = [100.0, 0.0]   # thorax wrong, left out
    boxes = np.array([[0.0, 0.0, 30.0, 40.0]])
    result = pckh(pred, gt, np.ones((1, 16)), boxes, thr=0.5)
    assert result.per_keypoint[0] == 1.0 and result.per_keypoint[1] == 0.0
    assert result.per_keypoint[6] == 0.0
    assert result.mean == pytest.approx(13 / 14)
    # At 0.1 (3 px) joints 0 and 1 are wrong too.
    assert pckh(pred, gt, np.ones((1, 16)), boxes, thr=0.1).mean == pytest.approx(12 / 14)


def test_pckh_mean_weights_joints_by_visible_count():
    gt = np.zeros((2, 16, 2))
    pred = np.zeros((2, 16, 2))
    pred[:, 9] = [100.0, 0.0]           # head top wrong in both instances
    visible = np.ones((2, 16), dtype=bool)
    visible[1, :] = False
    visible[1, 9] = True                # instance 1 only has the head top
    boxes = np.array([[0, 0, 30, 40], [0, 0, 30, 40]], dtype=float)
    result = pckh(pred, gt, visible, boxes)
    np.testing.assert_array_equal(result.counts[[0, 9]], [1, 2])
    # 13 correct joints out of 14 + 1 (head top counted twice): 13 / 15.
    assert result.mean == pytest.approx(13 / 15)


def test_zero_head_box_excludes_instance_and_nan_when_nothing_left():
    gt = np.zeros((2, 16, 2))
    pred = np.zeros((2, 16, 2))
    boxes = np.array([[5, 5, 5, 5], [0, 0, 30, 40]], dtype=float)
    result = pckh(pred, gt, np.ones((2, 16)), boxes)
    assert result.excluded_instances == 1 and result.mean == 1.0
    assert np.all(result.counts == 1)
    nothing = pckh(pred, gt, np.ones((2, 16)), np.zeros((2, 4)))
    assert math.isnan(nothing.mean) and nothing.excluded_instances == 2


def test_mpii_report_groups():
    gt = np.zeros((1, 16, 2))
    pred = np.zeros((1, 16, 2))
    pred[0, 15] = [100.0, 0.0]  # left wrist wrong
    report = mpii_report(pred, gt, np.ones((1, 16)), np.array([[0, 0, 30, 40.0]]))
    assert report["Wrist"] == 0.5 and report["Head"] == 1.0 and report["Ankle"] == 1.0
    assert report["PCKh"] == pytest.approx(13 / 14)
    assert report["PCKh@0.1"] == pytest.approx(13 / 14)
