"""OKS AP/AR parity with pycocotools on the real samples in ../shared/data (METHOD.md §5-6).

The oracle here is pycocotools called directly on the raw files (COCO(path), loadRes), so
the test also checks our in-memory GT/results normalisation.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.metrics.coco_format import normalize_ground_truth, normalize_results
from posebh_cli.metrics.oks import keypoint_ap, oks_stats, wholebody_part_ap
from posebh_cli.metrics.oks_pycocotools import STAT_NAMES

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10.0
AP10K_SIGMAS = np.array([.025, .025, .026, .035, .035, .079, .072, .062, .079, .072, .062, .107,
                         .087, .089, .107, .087, .089])
HAND_SIGMAS = np.array([.029, .022, .035, .037, .047, .026, .025, .024, .035, .018, .024, .022,
                        .026, .017, .021, .021, .032, .020, .019, .022, .031])


def load(relative: str) -> dict:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"sample data {path} not present")
    return json.loads(path.read_text())


def raw_pycocotools(dataset: dict, results: list, sigmas: np.ndarray) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats, strict=True))


def predictions(dataset: dict, kind: str, rng: np.random.Generator) -> list:
    """perfect / perturbed / missing (every other instance) / extra (plus random instances)."""
    out = []
    for n, ann in enumerate(dataset["annotations"]):
        kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if kind == "missing" and n % 2:
            continue
        det = kpts.copy()
        det[:, 2] = rng.uniform(0.3, 1.0, len(det))
        if kind != "perfect":
            det[:, :2] += rng.normal(0, 4.0, (len(det), 2))
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                    "keypoints": det.ravel().tolist(), "score": float(rng.uniform(0.5, 1))})
        if kind == "extra":
            junk = det.copy()
            junk[:, :2] = rng.uniform(0, 400, (len(det), 2))
            out.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                        "keypoints": junk.ravel().tolist(), "score": float(rng.uniform(0, 1))})
    return out


SAMPLES = [("coco/test_coco.json", COCO_SIGMAS), ("ap10k/test_ap10k.json", AP10K_SIGMAS),
           ("onehand10k/test_onehand10k.json", HAND_SIGMAS)]


@pytest.mark.parametrize("relative,sigmas", SAMPLES)
@pytest.mark.parametrize("kind", ["perfect", "perturbed", "missing", "extra"])
@pytest.mark.parametrize("backend", ["pycocotools", "fast"])
def test_sample_parity(relative, sigmas, kind, backend):
    dataset = load(relative)
    oracle_gt = copy.deepcopy(dataset)
    for ann in oracle_gt["annotations"]:  # OneHand10K has no num_keypoints: count v > 0
        ann.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3])))
    results = predictions(dataset, kind, np.random.default_rng(len(kind)))
    expected = raw_pycocotools(oracle_gt, results, sigmas)
    got = keypoint_ap(dataset, results, sigmas, backend=backend)
    for name in STAT_NAMES:
        assert got[name] == pytest.approx(expected[name], abs=1e-9, rel=0), name


@pytest.mark.parametrize("relative,sigmas", SAMPLES)
def test_perfect_predictions_score_one(relative, sigmas):
    dataset = load(relative)
    labelled = {**dataset, "annotations": [
        a for a in dataset["annotations"] if np.count_nonzero(np.asarray(a["keypoints"])[2::3])]}
    results = predictions(labelled, "perfect", np.random.default_rng(0))
    for backend in ("pycocotools", "fast"):
        # np.mean over many 1.0 entries may round to 1 - 2e-16.
        assert keypoint_ap(dataset, results, sigmas, backend=backend)["AP"] == pytest.approx(
            1.0, abs=1e-12)


@pytest.mark.parametrize("backend", ["pycocotools", "fast"])
def test_custom_sigmas_change_numbers_as_pycocotools(backend):
    dataset = load("coco/test_coco.json")
    results = predictions(dataset, "perturbed", np.random.default_rng(5))
    for scale in (0.5, 1.0, 2.0):
        expected = raw_pycocotools(dataset, results, COCO_SIGMAS * scale)
        got = keypoint_ap(dataset, results, COCO_SIGMAS * scale, backend=backend)
        for name in STAT_NAMES:
            assert got[name] == pytest.approx(expected[name], abs=1e-9, rel=0)
    loose = keypoint_ap(dataset, results, COCO_SIGMAS * 2.0, backend=backend)["AP"]
    tight = keypoint_ap(dataset, results, COCO_SIGMAS * 0.5, backend=backend)["AP"]
    assert loose > tight  # larger sigmas forgive the same pixel errors


def test_gt_conventions_area_num_keypoints_bool_crowd():
    dataset = load("coco/test_coco.json")
    stripped = copy.deepcopy(dataset)
    for ann in stripped["annotations"]:
        del ann["area"], ann["num_keypoints"]
        ann["iscrowd"] = bool(ann["iscrowd"])
    gt = normalize_ground_truth(stripped, 17, "gt.json")
    for ann, original in zip(gt["annotations"], dataset["annotations"], strict=True):
        assert ann["area"] == pytest.approx(0.53 * original["bbox"][2] * original["bbox"][3])
        assert ann["num_keypoints"] == original["num_keypoints"]  # the file's counts are v > 0
        assert ann["iscrowd"] == 0 and type(ann["iscrowd"]) is int
    oracle = copy.deepcopy(gt)
    results = predictions(dataset, "perturbed", np.random.default_rng(1))
    expected = raw_pycocotools(oracle, results, COCO_SIGMAS)
    assert keypoint_ap(stripped, results, COCO_SIGMAS, backend="fast") == pytest.approx(expected)


def wholebody_results(dataset: dict, rng: np.random.Generator) -> list:
    out = []
    for ann in dataset["annotations"]:
        parts = [ann[k] for k in ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts",
                                  "righthand_kpts")]
        kpts = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0, 2.0, (133, 2))
        kpts[:, 2] = 0.9
        out.append({"image_id": ann["image_id"], "category_id": 1,
                    "keypoints": kpts.ravel().tolist(), "score": float(rng.uniform(0.5, 1))})
    return out


def test_wholebody_parts_match_pycocotools_per_part():
    from posebh_cli.metrics.coco_format import WHOLEBODY_PARTS

    dataset = load("coco/test_coco_wholebody.json")
    sigmas = np.random.default_rng(0).uniform(0.01, 0.1, 133)
    gt = normalize_ground_truth(dataset, 133, "wb.json")
    results = normalize_results(wholebody_results(dataset, np.random.default_rng(1)), 133, gt,
                                "wb_results.json")
    reference = wholebody_part_ap(gt, results, sigmas, backend="pycocotools")
    fast = wholebody_part_ap(gt, results, sigmas, backend="fast")
    assert list(reference) == list(WHOLEBODY_PARTS)
    for part, (start, stop) in WHOLEBODY_PARTS.items():
        # Oracle: raw pycocotools on the part's arrays, num_keypoints counted in the part.
        part_gt = copy.deepcopy(gt)
        for ann in part_gt["annotations"]:
            ann["keypoints"] = ann["keypoints"][3 * start:3 * stop]
            ann["num_keypoints"] = int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3]))
        part_results = [{**r, "keypoints": r["keypoints"][3 * start:3 * stop]} for r in results]
        expected = raw_pycocotools(part_gt, part_results, sigmas[start:stop])
        for name in STAT_NAMES:
            assert reference[part][name] == pytest.approx(expected[name], abs=1e-9, rel=0)
            assert fast[part][name] == pytest.approx(expected[name], abs=1e-9, rel=0)
    assert oks_stats(gt, results, sigmas) == reference["whole"]
