"""Rescoring and OKS-NMS on hand-made cases (METHOD.md §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.postprocess import oks_iou, oks_nms, postprocess_results, rescore


def test_rescore_box_times_mean_keypoint_score_above_threshold():
    scores = np.array([[0.1, 0.5, 0.9], [0.2, 0.1, 0.0], [0.3, 0.3, 0.3]])
    boxes = np.array([0.8, 0.9, 0.5])
    # (0.5 + 0.9) / 2 * 0.8; none above 0.2 (0.2 is not > 0.2) -> 0; 0.3 * 0.5.
    np.testing.assert_allclose(rescore(scores, boxes), [0.56, 0.0, 0.15])
    np.testing.assert_allclose(rescore(scores, boxes, vis_thr=0.0), [0.4, 0.9 * 0.3 / 2, 0.15])
    with pytest.raises(PosebhError, match="rescore"):
        rescore(scores, boxes[:2])


def test_oks_iou_closed_form():
    sigmas = np.array([0.1])
    ref = np.array([[0.0, 0.0, 1.0]])
    other = np.array([[[3.0, 4.0, 1.0]]])
    # e = d^2 / (2 sigma)^2 / (mean area + eps) / 2 = 25 / 0.04 / 100 / 2 = 3.125.
    iou = oks_iou(ref, other, 100.0, np.array([100.0]), sigmas)
    assert iou.dtype == np.float32
    assert float(iou[0]) == pytest.approx(math.exp(-3.125), rel=1e-6)
    assert float(oks_iou(ref, ref[None], 50.0, np.array([50.0]), sigmas)[0]) == 1.0


def test_oks_iou_visibility_threshold_needs_both_scores():
    sigmas = np.array([0.1, 0.1])
    ref = np.array([[0.0, 0.0, 0.9], [0.0, 0.0, 0.1]])
    other = np.array([[[0.0, 0.0, 0.9], [50.0, 0.0, 0.9]]])
    # Keypoint 1 is low-scored in the reference: only keypoint 0 (identical) counts.
    assert float(oks_iou(ref, other, 100.0, np.array([100.0]), sigmas, vis_thr=0.2)[0]) == 1.0
    assert float(oks_iou(ref, other, 100.0, np.array([100.0]), sigmas)[0]) < 0.6


def test_oks_nms_drops_duplicates_keeps_distinct():
    sigmas = np.full(2, 0.1)
    a = np.array([[0.0, 0.0, 1.0], [10.0, 0.0, 1.0]])
    b = a + [0.1, 0.0, 0.0]     # near duplicate of a: OKS > 0.9
    c = a + [500.0, 0.0, 0.0]   # far away
    keep = oks_nms(np.stack([b, a, c]), np.array([0.8, 0.9, 0.7]), np.full(3, 1000.0), sigmas)
    np.testing.assert_array_equal(keep, [1, 2])
    # Threshold 1.0 keeps everything (OKS <= 1), highest score first.
    keep = oks_nms(np.stack([b, a, c]), np.array([0.8, 0.9, 0.7]), np.full(3, 1000.0), sigmas,
                   oks_thr=1.0)
    np.testing.assert_array_equal(keep, [1, 0, 2])
    assert len(oks_nms(np.zeros((0, 2, 3)), np.zeros(0), np.zeros(0), sigmas)) == 0


def test_postprocess_results_per_image():
    sigmas = np.full(2, 0.1)
    a = [0.0, 0.0, 0.9, 10.0, 0.0, 0.5]
    near = [0.1, 0.0, 0.9, 10.1, 0.0, 0.5]
    records = [
        {"image_id": 1, "category_id": 1, "keypoints": near, "score": 0.5, "area": 1000.0},
        {"image_id": 2, "category_id": 1, "keypoints": near, "score": 0.5, "bbox": [0, 0, 40, 25]},
        {"image_id": 1, "category_id": 1, "keypoints": a, "score": 1.0, "area": 1000.0},
    ]
    out = postprocess_results(records, sigmas)
    assert [(r["image_id"], r["keypoints"]) for r in out] == [(1, a), (2, near)]
    assert out[0]["score"] == pytest.approx(0.7)   # (0.9 + 0.5) / 2 x 1.0
    assert out[1]["score"] == pytest.approx(0.35)
    assert records[0]["score"] == 0.5               # input untouched
    plain = postprocess_results(records, sigmas, rescoring=False, nms=False)
    # Grouped by image (first appearance), input order inside an image.
    assert [r["score"] for r in plain] == [0.5, 1.0, 0.5]
