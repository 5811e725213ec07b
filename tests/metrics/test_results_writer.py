"""COCO results and metrics JSON writers (atomic, valid JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.io.results import write_coco_results, write_metrics


def test_coco_results_round_trip_from_arrays(tmp_path):
    path = tmp_path / "out" / "results.json"
    kpts = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_coco_results(path, [{"image_id": np.int64(4), "category_id": 1, "keypoints": kpts,
                               "score": np.float32(0.5), "ann_id": 9}])
    assert json.loads(path.read_text()) == [{"image_id": 4, "category_id": 1,
                                             "keypoints": [0, 1, 2, 3, 4, 5], "score": 0.5,
                                             "ann_id": 9}]
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left


def test_coco_results_errors(tmp_path):
    with pytest.raises(PosebhError, match="record 0 lacks 'score'"):
        write_coco_results(tmp_path / "r.json", [{"image_id": 1, "category_id": 1,
                                                  "keypoints": [0, 0, 0]}])
    with pytest.raises(PosebhError, match="record 0: keypoints must be"):
        write_coco_results(tmp_path / "r.json", [{"image_id": 1, "category_id": 1,
                                                  "keypoints": [0, 0], "score": 1}])
    with pytest.raises(PosebhError, match="finite"):
        write_coco_results(tmp_path / "r.json", [{"image_id": 1, "category_id": 1,
                                                  "keypoints": [0, np.nan, 0], "score": 1}])
    assert not (tmp_path / "r.json").exists()


def test_metrics_nan_becomes_null(tmp_path):
    path = tmp_path / "metrics.json"
    write_metrics(path, {"AP": np.float64(0.5), "pck": {"EPE": float("nan"),
                                                        "per_keypoint": np.array([1.0, np.inf])}})
    assert json.loads(path.read_text()) == {"AP": 0.5, "pck": {"EPE": None,
                                                               "per_keypoint": [1.0, None]}}
