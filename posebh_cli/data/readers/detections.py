"""Detection-result boxes (COCO results format) as an `InstanceTable` for top-down evaluation.

File: a JSON list of {image_id, bbox xywh, score, category_id}. Boxes scoring below the
threshold are dropped (the det_bbox_thr of COCO / CrowdPose evaluation); degenerate boxes
(w or h <= 0) are dropped and counted in `meta["degenerate_boxes"]`, because detectors emit
them and they carry no pose.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from posebh_cli.data.readers.common import load_json
from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError


def read_detections(path: str | os.PathLike[str], images: InstanceTable,
                    score_threshold: float = 0.0) -> InstanceTable:
    """Detected boxes over the images of `images` (a ground-truth table of the same split).

    Returns N detections with keypoints (N, K, 3) zeros, scores (N,) from the file,
    instance_ids 0..N-1; image columns and meta are the ground truth's.
    """
    path = Path(path)
    data = load_json(path, "detection file")
    if not isinstance(data, list):
        raise PosebhError(f"{path}: expected a JSON list of detections {{image_id, bbox, score, "
                          f"category_id}}, got a {type(data).__name__}")
    row_of = {int(image_id): row for row, image_id in enumerate(images.image_ids.tolist())}
    rows, boxes, scores, categories = [], [], [], []
    degenerate = 0
    for i, detection in enumerate(data):
        where = f"{path}: detection [{i}]"
        if not isinstance(detection, dict):
            raise PosebhError(f"{where}: expected an object, got {type(detection).__name__}")
        for key in ("image_id", "bbox", "score"):
            if key not in detection:
                raise PosebhError(f"{where}: missing key '{key}'")
        try:
            box = np.asarray(detection["bbox"], dtype=np.float64)
            score = float(detection["score"])
            image_id = int(detection["image_id"])
        except (TypeError, ValueError):
            raise PosebhError(f"{where}: 'bbox' must be 4 numbers, 'score' a number and "
                              "'image_id' an integer") from None
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise PosebhError(f"{where}: field 'bbox': expected 4 finite numbers [x, y, w, h]")
        if image_id not in row_of:
            raise PosebhError(f"{where}: field 'image_id': {image_id} is not an image of "
                              f"{images.meta.get('ann_file', images.dataset)}")
        if score < score_threshold:
            continue
        if box[2] <= 0 or box[3] <= 0:
            degenerate += 1
            continue
        rows.append(row_of[image_id])
        boxes.append(box)
        scores.append(score)
        categories.append(int(detection.get("category_id", 1)))
    n, k = len(rows), images.num_keypoints
    boxes_array = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    meta = dict(images.meta, boxes=str(path.resolve()), det_score_threshold=score_threshold,
                degenerate_boxes=degenerate)
    return dataclasses.replace(
        images,
        image_index=np.asarray(rows, dtype=np.int64),
        boxes=boxes_array,
        keypoints=np.zeros((n, k, 3), dtype=np.float32),
        areas=boxes_array[:, 2] * boxes_array[:, 3],
        instance_ids=np.arange(n, dtype=np.int64),
        category_ids=np.asarray(categories, dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float32),
        extras={"iscrowd": np.zeros(n, dtype=bool)},
        meta=meta,
    )
