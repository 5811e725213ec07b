"""The vectorised OKS AP equals pycocotools on many random cases (METHOD.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
from _oks_cases import random_case

from posebh_cli.metrics.oks import oks_stats
from posebh_cli.metrics.oks_pycocotools import STAT_NAMES

COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10.0


def assert_same(gt, results, sigmas):
    reference = oks_stats(gt, results, sigmas, backend="pycocotools")
    fast = oks_stats(gt, results, sigmas, backend="fast")
    assert list(fast) == list(STAT_NAMES)
    for name in STAT_NAMES:
        assert fast[name] == pytest.approx(reference[name], abs=1e-9, rel=0), name
    return reference


@pytest.mark.parametrize("seed", range(120))
def test_fast_equals_pycocotools_random(seed):
    rng = np.random.default_rng(seed)
    gt, results = random_case(
        rng, num_images=int(rng.integers(1, 12)), num_categories=int(rng.integers(1, 4)),
        score_decimals=1 if seed % 2 else None, first_gt_id=0 if seed % 7 == 0 else 1)
    assert_same(gt, results, COCO_SIGMAS)


@pytest.mark.parametrize("num_keypoints", [1, 5, 21, 133])
def test_fast_equals_pycocotools_other_skeletons(num_keypoints):
    rng = np.random.default_rng(num_keypoints)
    sigmas = rng.uniform(0.01, 0.1, num_keypoints)
    for _ in range(5):
        gt, results = random_case(rng, num_images=6, num_keypoints=num_keypoints)
        assert_same(gt, results, sigmas)


def test_more_than_20_predictions_per_image_and_score_ties():
    rng = np.random.default_rng(3)
    gt, results = random_case(rng, num_images=3, max_gt=12, max_dets_per_gt=4,
                              score_decimals=0)
    assert max(np.unique([r["image_id"] for r in results], return_counts=True)[1]) > 20
    assert_same(gt, results, COCO_SIGMAS)


def test_no_predictions_scores_zero_and_no_gt_scores_minus_one():
    rng = np.random.default_rng(0)
    gt, results = random_case(rng, num_images=4, crowd_rate=0.0)
    stats = assert_same(gt, [], COCO_SIGMAS)
    assert stats["AP"] == 0.0 and stats["AR"] == 0.0
    empty_gt = {**gt, "annotations": []}
    stats = assert_same(empty_gt, results, COCO_SIGMAS)
    assert stats["AP"] == -1.0


def test_only_crowd_and_unlabelled_gt_is_undefined():
    rng = np.random.default_rng(1)
    gt, results = random_case(rng, num_images=4, crowd_rate=1.0)
    stats = assert_same(gt, results, COCO_SIGMAS)
    assert stats["AP"] == -1.0


def test_gt_without_labelled_keypoints_uses_box_distance_case():
    # num_keypoints > 0 in the file but no v > 0: pycocotools scores OKS against the
    # doubled GT box; both backends must agree.
    rng = np.random.default_rng(2)
    gt, results = random_case(rng, num_images=5)
    for ann in gt["annotations"]:
        ann["keypoints"][2::3] = [0] * 17
        ann["num_keypoints"] = 3
    assert_same(gt, results, COCO_SIGMAS)
