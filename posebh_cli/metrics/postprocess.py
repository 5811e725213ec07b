"""COCO top-down post-processing before OKS AP (METHOD.md §6): rescoring and OKS-NMS.

As the reference top-down evaluation (ViTPose / mmpose 0.x):
1. Rescoring: instance score = box score x mean of the keypoint scores above `vis_thr` (0.2);
   an instance with no keypoint score above it gets score 0.
2. OKS-NMS per image at `oks_thr` (0.9): take the highest score, drop every other instance whose
   OKS with it is above the threshold, repeat. The OKS uses the skeleton's sigmas and the mean
   of the two instance areas (the reference passes the area of the person crop box).

Kept as in the reference so scores match: the score order is numpy's default argsort reversed,
OKS values are float32, and the keypoint-score mean is a left-to-right sum. One deliberate
difference: with `nms_vis_thr` set, a keypoint counts when BOTH instances score it above the
threshold (the reference's `list(a) and list(b)` keeps only the second condition); the
reference pipeline never sets it, and None (all keypoints) is the default here too.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError

RESCORE_VIS_THR = 0.2
NMS_OKS_THR = 0.9


def rescore(keypoint_scores: np.ndarray, box_scores: np.ndarray,
            vis_thr: float = RESCORE_VIS_THR) -> np.ndarray:
    """box score x mean keypoint score above vis_thr (0 when none is above).

    keypoint_scores: (N, K); box_scores: (N,). Returns (N,) float64.
    """
    scores = np.asarray(keypoint_scores, dtype=np.float64)
    boxes = np.asarray(box_scores, dtype=np.float64)
    if scores.ndim != 2 or boxes.shape != scores.shape[:1]:
        raise PosebhError(f"rescore: keypoint scores must be (N, K) and box scores (N,), got "
                          f"{scores.shape} and {boxes.shape}")
    above = scores > vis_thr
    count = np.count_nonzero(above, axis=1)
    if scores.shape[1] == 0:
        return np.zeros(len(boxes))
    # cumsum adds left to right, as the reference's running sum (0.0 terms change nothing).
    total = np.cumsum(np.where(above, scores, 0.0), axis=1)[:, -1]
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return mean * boxes


def oks_iou(reference: np.ndarray, others: np.ndarray, reference_area: float,
            other_areas: np.ndarray, sigmas: np.ndarray,
            vis_thr: float | None = None) -> np.ndarray:
    """OKS between one instance and M others, as float32.

    reference: (K, 3) x, y, score; others: (M, K, 3); other_areas: (M,); sigmas: (K,).
    """
    reference = np.asarray(reference, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, *reference.shape)
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    dx = others[..., 0] - reference[None, :, 0]
    dy = others[..., 1] - reference[None, :, 1]
    areas = np.asarray(other_areas, dtype=np.float64)
    e = (dx ** 2 + dy ** 2) / variances / ((reference_area + areas[:, None]) / 2
                                          + np.spacing(1)) / 2
    ious = np.zeros(len(others), dtype=np.float32)
    if vis_thr is None:
        if e.shape[1]:
            ious[:] = np.sum(np.exp(-e), axis=1) / e.shape[1]
        return ious
    keep = (reference[None, :, 2] > vis_thr) & (others[..., 2] > vis_thr)
    for m in range(len(others)):
        terms = e[m][keep[m]]
        ious[m] = np.sum(np.exp(-terms)) / len(terms) if len(terms) else 0.0
    return ious


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
            oks_thr: float = NMS_OKS_THR, vis_thr: float | None = None) -> np.ndarray:
    """Indices of the instances kept by greedy OKS-NMS, highest score first.

    keypoints: (N, K, 3); scores: (N,); areas: (N,); sigmas: (K,).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    order = scores.argsort()[::-1]
    keep = []
    while len(order) > 0:
        i = order[0]
        keep.append(i)
        overlap = oks_iou(keypoints[i], keypoints[order[1:]], areas[i], areas[order[1:]],
                          sigmas, vis_thr)
        order = order[np.where(overlap <= oks_thr)[0] + 1]
    return np.asarray(keep, dtype=np.int64)


def _record_area(record: dict[str, Any], keypoints: np.ndarray) -> float:
    if "area" in record:
        return float(record["area"])
    if "bbox" in record:
        return float(record["bbox"][2]) * float(record["bbox"][3])
    x, y = keypoints[:, 0], keypoints[:, 1]
    return float((x.max() - x.min()) * (y.max() - y.min()))


def postprocess_results(records: list[dict[str, Any]], sigmas: np.ndarray, *,
                        rescoring: bool = True, nms: bool = True,
                        vis_thr: float = RESCORE_VIS_THR, oks_thr: float = NMS_OKS_THR,
                        nms_vis_thr: float | None = None) -> list[dict[str, Any]]:
    """Rescore and OKS-NMS COCO result records per image (new records; input untouched).

    records: [{image_id, keypoints: flat K*3 (x, y, keypoint score), score: box score, ...}].
    The NMS area is the record's `area`, else its `bbox` area, else its keypoint extent.
    Output: images in order of first appearance; inside an image, descending score when NMS
    runs (the order it keeps them in), else the input order.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    per_image: OrderedDict[Any, list[dict[str, Any]]] = OrderedDict()
    for record in records:
        per_image.setdefault(record["image_id"], []).append(record)
    out = []
    for image_records in per_image.values():
        kpts = np.asarray([r["keypoints"] for r in image_records],
                          dtype=np.float64).reshape(len(image_records), len(sigmas), 3)
        scores = np.asarray([r["score"] for r in image_records], dtype=np.float64)
        if rescoring:
            scores = rescore(kpts[..., 2], scores, vis_thr)
        if nms:
            areas = np.asarray([_record_area(r, k) for r, k in zip(image_records, kpts,
                                                                     strict=True)])
            keep = oks_nms(kpts, scores, areas, sigmas, oks_thr, nms_vis_thr)
        else:
            keep = np.arange(len(image_records))
        out.extend({**image_records[i], "score": float(scores[i])} for i in keep)
    return out
