"""Model-free scoring of a results file (`posebh eval --predictions`), METHOD.md §6."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.score_results import score_results, score_results_file

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def sample(relative: str) -> Path:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"sample data {path} not present")
    return path


def tiny_gt(num_keypoints: int = 17, per_image: int = 1) -> dict:
    anns = []
    for image_id in (1, 2):
        for n in range(per_image):
            kpts = np.zeros((num_keypoints, 3))
            kpts[:, 0] = np.arange(num_keypoints) * 3 + 10 + 40 * n
            kpts[:, 1] = 20
            kpts[:, 2] = 2
            anns.append({"id": image_id * 10 + n, "image_id": image_id, "category_id": 1,
                         "keypoints": kpts.ravel().tolist(), "bbox": [5, 5, 80, 60]})
    return {"images": [{"id": 1}, {"id": 2}], "annotations": anns,
            "categories": [{"id": 1, "name": "x"}]}


def perfect(gt: dict) -> list:
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
             "score": 0.9} for a in gt["annotations"]]


def write(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def test_oks_report_for_a_human_skeleton(tmp_path):
    gt = tiny_gt()
    report = score_results_file(write(tmp_path, "r.json", perfect(gt)),
                                write(tmp_path, "gt.json", gt), "coco")
    assert report["metric"] == "oks" and report["skeleton"] == "coco"
    assert report["oks"]["AP"] == 1.0 and report["num_predictions"] == 2
    fast = score_results_file(tmp_path / "r.json", tmp_path / "gt.json", "coco", backend="fast")
    assert fast["oks"] == report["oks"]


def test_hand_skeleton_reports_pck_auc_epe_and_optional_oks(tmp_path):
    gt = tiny_gt(21)
    results = perfect(gt)
    shifted = np.asarray(results[1]["keypoints"]).reshape(21, 3)
    shifted[:, 0] += 12.0  # 12 px on an 80 px box: 0.15 < 0.2, still correct
    results[1] = {**results[1], "keypoints": shifted.ravel().tolist()}
    report = score_results(gt, results, "onehand10k")
    assert report["metric"] == "pck" and "oks" not in report
    assert report["pck"]["PCK@0.2"] == 1.0
    assert report["pck"]["PCK@0.1"] == 0.5  # 0.15 of the box fails the strict threshold
    assert report["pck"]["EPE"] == pytest.approx(6.0)  # 0 and 12 px
    # AUC: instance 0 correct for 19 of 20 steps, instance 1 (12/30 = 0.4) for i = 9..19.
    assert report["pck"]["AUC"] == pytest.approx((19 + 11) / 40)
    with_oks = score_results(gt, results, "onehand10k", with_oks=True)
    assert with_oks["oks"]["AP"] >= 0 and with_oks["pck"] == report["pck"]


def test_pck_pairs_by_ann_id_when_images_hold_several_instances():
    gt = tiny_gt(21, per_image=2)
    results = perfect(gt)
    with pytest.raises(PosebhError, match="ann_id"):
        score_results(gt, results, "onehand10k")
    results = [{**r, "ann_id": a["id"]} for r, a in zip(results, gt["annotations"], strict=True)]
    assert score_results(gt, results[::-1], "onehand10k")["pck"]["PCK@0.2"] == 1.0
    with pytest.raises(PosebhError, match="no prediction with ann_id"):
        score_results(gt, results[1:], "onehand10k")


def test_onehand10k_sample_perfect_predictions(tmp_path):
    path = sample("onehand10k/test_onehand10k.json")
    gt = json.loads(path.read_text())
    report = score_results_file(write(tmp_path, "r.json", perfect(gt)), path, "onehand10k",
                                with_oks=True)
    assert report["pck"]["PCK@0.2"] == 1.0 and report["pck"]["EPE"] == 0.0
    assert report["pck"]["AUC"] == pytest.approx(19 / 20)
    assert report["oks"]["AP"] == pytest.approx(1.0)


def test_wholebody_sample_reports_parts(tmp_path):
    path = sample("coco/test_coco_wholebody.json")
    gt = json.loads(path.read_text())
    results = []
    for a in gt["annotations"]:
        flat = a["keypoints"] + a["foot_kpts"] + a["face_kpts"] + a["lefthand_kpts"] + a[
            "righthand_kpts"]
        results.append({"image_id": a["image_id"], "category_id": 1, "keypoints": flat,
                        "score": 1.0})
    report = score_results_file(write(tmp_path, "r.json", results), path, "coco_wholebody")
    assert set(report["oks_parts"]) == {"body", "foot", "face", "lefthand", "righthand", "whole"}
    assert report["oks_parts"]["whole"] == report["oks"]
    # The body part is exactly the COCO-17 score of the same file's body keypoints.
    body = [{**r, "keypoints": r["keypoints"][:51]} for r in results]
    assert report["oks_parts"]["body"] == score_results(gt, body, "coco")["oks"]


def test_rescore_nms_option_removes_duplicates():
    gt = tiny_gt()
    results = perfect(gt) + perfect(gt)  # exact duplicates: NMS removes them
    plain = score_results(gt, results, "coco")
    processed = score_results(gt, results, "coco", postprocess=True)
    assert plain["oks"]["AP"] < 1.0  # each duplicate is a false positive
    assert processed["oks"]["AP"] == 1.0 and processed["oks"]["AR"] == 1.0


@pytest.mark.parametrize("content,pattern", [
    (None, "predictions file not found"),
    ('[{"image_id": 1,\n  "score": }]', r"malformed JSON at line 2, column 12"),
    ('{"image_id": 1}', "expected a JSON list"),
    ('[{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 3], "score": 1}]',
     r"r.json: record 0: 'keypoints' holds 3 values, expected 51 .*K=17"),
    ('[{"image_id": 77, "category_id": 1, "keypoints": ' + json.dumps([0] * 51)
     + ', "score": 1}]', r"record 0: image_id 77 is not an image of the ground truth"),
    ('[{"image_id": 1, "keypoints": ' + json.dumps([0] * 51) + '}]', "record 0: missing 'score'"),
])
def test_user_errors_name_file_and_record(tmp_path, content, pattern):
    gt_path = write(tmp_path, "gt.json", tiny_gt())
    results_path = tmp_path / "r.json"
    if content is not None:
        results_path.write_text(content)
    with pytest.raises(PosebhError, match=pattern):
        score_results_file(results_path, gt_path, "coco")


def test_unknown_skeleton_metric_and_bad_ground_truth(tmp_path):
    gt = tiny_gt()
    results_path = write(tmp_path, "r.json", perfect(gt))
    with pytest.raises(PosebhError, match="unknown skeleton 'cocoo'.*did you mean 'coco'"):
        score_results_file(results_path, write(tmp_path, "gt.json", gt), "cocoo")
    with pytest.raises(PosebhError, match="unknown metric"):
        score_results(gt, perfect(gt), "coco", metric="map")
    with pytest.raises(PosebhError, match=r"gt2.json: missing list 'annotations'"):
        score_results_file(results_path, write(tmp_path, "gt2.json", {"images": []}), "coco")
    with pytest.raises(PosebhError, match=r"annotations\[0\]: 'keypoints' holds 51 values, "
                                          r"expected 63"):
        score_results(gt, perfect(gt), "onehand10k")
    with pytest.raises(PosebhError, match="unknown OKS backend"):
        score_results(gt, perfect(gt), "coco", backend="gpu")


def test_empty_results_score_zero():
    report = score_results(tiny_gt(), [], "coco")
    assert report["oks"]["AP"] == 0.0
    assert not math.isnan(report["oks"]["AR"])
