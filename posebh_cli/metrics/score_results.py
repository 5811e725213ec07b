"""Score a COCO results file against COCO-style ground truth, without any model (METHOD.md §6).

`posebh eval --predictions` calls `score_results_file`; the model-based evaluation builds the
same in-memory objects and calls `score_results`, so both report identical numbers.

metric="auto": OKS AP/AR for human, animal and wholebody skeletons (COCO-WholeBody adds the
per-part scores); PCK@0.2 of the box, AUC (0-30 px, 20 steps) and EPE for hands. metric="pck"
on a hand skeleton can add OKS AP with the hand sigmas (`with_oks=True`).

PCK pairs each GT instance with one prediction: by the record's `ann_id` (the annotation id)
when records carry it, otherwise by image when every image has one GT instance and at most
one prediction (the top-down hand protocol).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.coco_format import (
    normalize_ground_truth,
    normalize_results,
    read_json,
)
from posebh_cli.metrics.oks import oks_stats, wholebody_part_ap
from posebh_cli.metrics.pck import auc, box_normalizer, epe, pck
from posebh_cli.metrics.postprocess import postprocess_results

METRICS = ("auto", "oks", "pck")
HAND_PCK_THR = 0.2
STRICT_PCK_THR = 0.1  # always reported too: at 0.2 of the box a hand joint may sit on a neighbour


def _pair_for_pck(gt: dict[str, Any], records: list[dict[str, Any]],
                  source: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(GT annotation, prediction) pairs, one per GT instance."""
    anns = gt["annotations"]
    if records and all("ann_id" in r for r in records):
        by_id = {r["ann_id"]: r for r in records}
        missing = [a["id"] for a in anns if a["id"] not in by_id]
        if missing:
            raise PosebhError(f"{source}: no prediction with ann_id {missing[0]!r} "
                              f"({len(missing)} GT instances have none)")
        return [(a, by_id[a["id"]]) for a in anns]
    per_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in anns:
        per_image.setdefault(ann["image_id"], []).append(ann)
    crowded = [i for i, a in per_image.items() if len(a) > 1]
    if crowded:
        raise PosebhError(f"{source}: image {crowded[0]!r} has {len(per_image[crowded[0]])} GT "
                          "instances; give each prediction an 'ann_id' (its annotation id) "
                          "for PCK")
    predictions: dict[Any, dict[str, Any]] = {}
    for n, record in enumerate(records):
        if record["image_id"] in predictions:
            raise PosebhError(f"{source}: record {n}: a second prediction for image "
                              f"{record['image_id']!r}; PCK scores one per GT instance (add "
                              "'ann_id' to each record)")
        predictions[record["image_id"]] = record
    missing = [i for i in per_image if i not in predictions]
    if missing:
        raise PosebhError(f"{source}: no prediction for image {missing[0]!r} "
                          f"({len(missing)} GT images have none)")
    return [(a, predictions[a["image_id"]]) for a in anns]


def pck_report(gt: dict[str, Any], records: list[dict[str, Any]], num_keypoints: int,
               source: str, thr: float = HAND_PCK_THR) -> dict[str, Any]:
    """PCK@thr and PCK@0.1 (box max(w, h) normaliser), AUC (0-30 px, 20 steps), EPE in px."""
    pairs = _pair_for_pck(gt, records, source)
    if not pairs:
        raise PosebhError(f"{source}: the ground truth has no annotated instance to score")
    gt_kpts = np.asarray([a["keypoints"] for a, _ in pairs], dtype=np.float64).reshape(
        len(pairs), num_keypoints, 3)
    pred = np.asarray([r["keypoints"] for _, r in pairs], dtype=np.float64).reshape(
        len(pairs), num_keypoints, 3)[..., :2]
    visible = gt_kpts[..., 2] > 0
    boxes = np.asarray([a["bbox"] for a, _ in pairs], dtype=np.float64)
    normalizer = box_normalizer(boxes, "max")
    result = pck(pred, gt_kpts[..., :2], visible, normalizer, thr)
    strict = pck(pred, gt_kpts[..., :2], visible, normalizer, STRICT_PCK_THR)
    return {
        f"PCK@{thr:g}": result.mean,
        f"PCK@{STRICT_PCK_THR:g}": strict.mean,
        "AUC": auc(pred, gt_kpts[..., :2], visible),
        "EPE": epe(pred, gt_kpts[..., :2], visible),
        "per_keypoint": [float(v) for v in result.per_keypoint],
        "instances": len(pairs),
        "excluded_instances": result.excluded_instances,
    }


def score_results(gt_dataset: Any, results: Any, skeleton_name: str, *, metric: str = "auto",
                  backend: str = "pycocotools", postprocess: bool = False,
                  with_oks: bool = False, pck_thr: float = HAND_PCK_THR,
                  gt_source: str = "ground truth",
                  results_source: str = "results") -> dict[str, Any]:
    """Score parsed GT (COCO-style dict) and results (COCO results list) for one skeleton.

    postprocess: apply the reference rescoring + OKS-NMS (METHOD.md §6) before OKS AP.
    Returns {"skeleton", "family", "metric", "num_predictions", "num_gt_instances",
    "oks": {AP..AR_L}?, "oks_parts": {part: {...}}?, "pck": {...}?}.
    """
    from posebh_cli.skeletons import get_skeleton

    if metric not in METRICS:
        raise PosebhError(f"unknown metric '{metric}'; valid: {', '.join(METRICS)}")
    skeleton = get_skeleton(skeleton_name)
    num_keypoints = skeleton.num_keypoints
    gt = normalize_ground_truth(gt_dataset, num_keypoints, gt_source)
    records = normalize_results(results, num_keypoints, gt, results_source)
    chosen = metric
    if metric == "auto":
        chosen = "pck" if skeleton.family == "hand" else "oks"
    report: dict[str, Any] = {
        "skeleton": skeleton.name, "family": skeleton.family, "metric": chosen,
        "num_predictions": len(records), "num_gt_instances": len(gt["annotations"]),
    }
    if chosen == "oks" or with_oks:
        scored = postprocess_results(records, skeleton.sigmas) if postprocess else records
        report["backend"] = backend
        report["oks"] = oks_stats(gt, scored, skeleton.sigmas, backend)
        if skeleton.family == "wholebody" and num_keypoints == 133:
            report["oks_parts"] = wholebody_part_ap(gt, scored, skeleton.sigmas,
                                                    backend=backend)
    if chosen == "pck":
        report["pck"] = pck_report(gt, records, num_keypoints, results_source, pck_thr)
    return report


def score_results_file(results_path: str | Path, ann_path: str | Path, skeleton_name: str, *,
                       metric: str = "auto", backend: str = "pycocotools",
                       postprocess: bool = False, with_oks: bool = False,
                       pck_thr: float = HAND_PCK_THR) -> dict[str, Any]:
    """Read a COCO results JSON and a COCO-style GT JSON and score them (see `score_results`).

    Every user mistake (missing file, malformed JSON, wrong keypoint count, unknown image or
    skeleton) raises PosebhError naming the file and record.
    """
    from posebh_cli.skeletons import get_skeleton

    get_skeleton(skeleton_name)  # an unknown skeleton is reported before any file is read
    results = read_json(results_path, "predictions")
    gt_dataset = read_json(ann_path, "annotation")
    report = score_results(gt_dataset, results, skeleton_name, metric=metric, backend=backend,
                           postprocess=postprocess, with_oks=with_oks, pck_thr=pck_thr,
                           gt_source=str(ann_path), results_source=str(results_path))
    return {"predictions": str(results_path), "annotations": str(ann_path), **report}
