"""Writers for keypoint results (COCO results JSON) and metrics JSON, both atomic.

COCO results format: a list of {image_id, category_id, keypoints: flat [x, y, score] * K,
score}; extra keys a record carries (e.g. `ann_id`, `bbox`) are kept. Metrics JSON: any nested
dict of numbers; NaN and infinities (undefined metrics) are written as null, because JSON has
no NaN.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_write_json, json_ready

_REQUIRED = ("image_id", "category_id", "keypoints", "score")


def write_coco_results(path: str | os.PathLike[str], records: list[dict[str, Any]]) -> None:
    """Write COCO keypoint results; keypoints may be flat lists or (K, 3) arrays."""
    out = []
    for n, record in enumerate(records):
        missing = [key for key in _REQUIRED if key not in record]
        if missing:
            raise PosebhError(f"{path}: result record {n} lacks '{missing[0]}' (COCO results "
                              f"need {', '.join(_REQUIRED)})")
        keypoints = np.asarray(record["keypoints"], dtype=np.float64)
        if keypoints.ndim == 2 and keypoints.shape[1] != 3 or keypoints.size % 3:
            raise PosebhError(f"{path}: result record {n}: keypoints must be (K, 3) or flat "
                              f"K*3, got shape {keypoints.shape}")
        if not np.all(np.isfinite(keypoints)):
            raise PosebhError(f"{path}: result record {n}: keypoints must be finite")
        plain = json_ready(record)
        plain["keypoints"] = keypoints.reshape(-1).tolist()
        plain["score"] = float(record["score"])
        out.append(plain)
    atomic_write_json(path, out, indent=None)


def write_metrics(path: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """Write a metrics dict as indented JSON (NaN/inf -> null)."""
    atomic_write_json(path, json_ready(metrics))
