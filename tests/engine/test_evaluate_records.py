from __future__ import annotations

import numpy as np

from posebh_cli.data.records import InstanceTable
from posebh_cli.engine.evaluate import Predictions, coco_results, gt_from_table
from posebh_cli.metrics.score_results import score_results


def two_hands_in_one_image() -> InstanceTable:
    keypoints = np.zeros((2, 21, 3), np.float32)
    keypoints[0, :, :2] = np.stack([np.linspace(10, 50, 21), np.full(21, 20.0)], axis=1)
    keypoints[1, :, :2] = np.stack([np.linspace(60, 100, 21), np.full(21, 70.0)], axis=1)
    keypoints[:, :, 2] = 2
    return InstanceTable(
        dataset="hands", skeleton="onehand10k", image_root=".",
        image_files=np.array(["a.jpg"]), image_ids=np.array([7]),
        image_sizes=np.array([[120, 120]], np.int32), image_index=np.array([0, 0]),
        boxes=np.array([[10, 10, 40, 20], [60, 60, 40, 20]], np.float32), keypoints=keypoints,
        areas=np.array([424.0, 424.0], np.float32), instance_ids=np.array([11, 12]),
        category_ids=np.array([1, 1]), scores=np.ones(2, np.float32))


def test_gt_box_records_name_their_annotation_so_hand_pck_pairs_them():
    table = two_hands_in_one_image()
    exact = Predictions(table.keypoints[:, :, :2].copy(), np.ones((2, 21)), 1.0)
    records = coco_results(table, exact, gt_boxes=True)
    assert [r["ann_id"] for r in records] == [11, 12]
    report = score_results(gt_from_table(table), records, "onehand10k")
    assert report["pck"]["PCK@0.2"] == 1.0 and report["pck"]["EPE"] == 0.0
    # Swapping which hand each prediction names must be scored as wrong, not silently re-paired.
    swapped = [dict(records[0], ann_id=12), dict(records[1], ann_id=11)]
    assert score_results(gt_from_table(table), swapped, "onehand10k")["pck"]["PCK@0.2"] == 0.0
