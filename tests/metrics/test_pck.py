"""PCK / AUC / EPE on hand-computed cases (METHOD.md §5: hands)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.pck import auc, box_normalizer, epe, normalized_distances, pck


def case():
    """2 instances x 3 keypoints; errors in px: inst 0 = (3,4)->5, (0,1)->1, (6,8)->10;
    inst 1 = (0,2)->2, (0,0)->0, invisible (error 100)."""
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0] = [[3, 4], [0, 1], [6, 8]]
    pred[1] = [[0, 2], [0, 0], [100, 0]]
    visible = np.array([[True, True, True], [True, True, False]])
    return pred, gt, visible


def test_pck_per_keypoint_and_mean_of_keypoints():
    pred, gt, visible = case()
    # normaliser 20 px: thr 0.2 -> correct when distance < 4 px.
    result = pck(pred, gt, visible, np.array([20.0, 20.0]), 0.2)
    np.testing.assert_array_equal(result.per_keypoint, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(result.counts, [2, 2, 1])
    assert result.mean == pytest.approx((0.5 + 1.0 + 0.0) / 3)  # mean over keypoints
    assert result.excluded_instances == 0


def test_pck_threshold_is_strict():
    gt = np.zeros((1, 1, 2))
    pred = np.array([[[2.0, 0.0]]])
    assert pck(pred, gt, np.ones((1, 1)), 10.0, 0.2).mean == 0.0  # 2/10 is not < 0.2
    assert pck(pred, gt, np.ones((1, 1)), 10.0, 0.21).mean == 1.0


def test_pck_per_axis_normaliser():
    gt = np.zeros((1, 1, 2))
    pred = np.array([[[10.0, 1.0]]])
    # (w, h) = (100, 10): normalised error = hypot(0.1, 0.1) = 0.1414.
    wh = box_normalizer(np.array([[0, 0, 100, 10]]), "wh")
    np.testing.assert_array_equal(wh, [[100, 10]])
    assert pck(pred, gt, np.ones((1, 1)), wh, 0.15).mean == 1.0
    assert pck(pred, gt, np.ones((1, 1)), wh, 0.14).mean == 0.0
    # max(w, h) = 100 on both axes: error = hypot(0.1, 0.01) = 0.1005.
    np.testing.assert_array_equal(box_normalizer(np.array([[0, 0, 100, 10]]), "max"), [100])
    assert pck(pred, gt, np.ones((1, 1)), box_normalizer(np.array([[0, 0, 100, 10]])),
               0.101).mean == 1.0


def test_zero_normaliser_excludes_the_instance_and_all_zero_is_nan():
    pred, gt, visible = case()
    result = pck(pred, gt, visible, np.array([0.0, 20.0]), 0.2)
    np.testing.assert_array_equal(result.per_keypoint[:2], [1.0, 1.0])  # only instance 1
    assert math.isnan(result.per_keypoint[2])  # keypoint 2 visible only in instance 0
    assert result.excluded_instances == 1
    assert result.mean == 1.0
    none_left = pck(pred, gt, visible, np.array([0.0, np.nan]), 0.2)
    assert math.isnan(none_left.mean) and none_left.excluded_instances == 2
    dist, excluded = normalized_distances(pred, gt, visible, np.array([[0.0, 5.0], [1.0, 1.0]]))
    assert excluded == 1 and np.isnan(dist[0]).all()  # any zero axis excludes the instance


def test_non_finite_prediction_is_a_miss():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[np.nan, 0.0], [0.0, 0.0]]])
    result = pck(pred, gt, np.ones((1, 2)), 10.0, 0.5)
    np.testing.assert_array_equal(result.per_keypoint, [0.0, 1.0])


def test_auc_closed_form():
    gt = np.zeros((1, 1, 2))
    # 3 px error / 30 px = 0.1: correct for thresholds i/20 > 0.1 -> i = 3..19 -> 17 of 20.
    assert auc(np.array([[[3.0, 0.0]]]), gt, np.ones((1, 1))) == pytest.approx(17 / 20)
    # A perfect prediction misses the threshold-0 step (0 < 0 is false): 19 of 20.
    assert auc(gt.copy(), gt, np.ones((1, 1))) == pytest.approx(19 / 20)
    # Two instances, 3 px and 16.5 px (-> 0.55, correct for i >= 12, 8 steps): (17 + 8) / 40.
    pred = np.array([[[3.0, 0.0]], [[0.0, 16.5]]])
    assert auc(pred, np.zeros((2, 1, 2)), np.ones((2, 1))) == pytest.approx(25 / 40)
    assert math.isnan(auc(pred, np.zeros((2, 1, 2)), np.zeros((2, 1))))


def test_epe_mean_over_visible_joints():
    pred, gt, visible = case()
    assert epe(pred, gt, visible) == pytest.approx((5 + 1 + 10 + 2 + 0) / 5)
    assert math.isnan(epe(pred, gt, np.zeros_like(visible)))


def test_shape_errors_are_user_errors():
    pred, gt, visible = case()
    with pytest.raises(PosebhError, match=r"\(N, K, 2\)"):
        pck(pred[..., :1], gt, visible, 1.0, 0.2)
    with pytest.raises(PosebhError, match="visible"):
        pck(pred, gt, visible[:, :2], 1.0, 0.2)
    with pytest.raises(PosebhError, match="normaliser"):
        pck(pred, gt, visible, np.ones(3), 0.2)
    with pytest.raises(PosebhError, match="max, wh"):
        box_normalizer(np.ones((1, 4)), "diag")
