"""OKS keypoint AP/AR for any skeleton (METHOD.md §5-6): one entry point, two backends.

`backend="pycocotools"` (the default, the reference) or `"fast"` (our vectorised numpy
reimplementation, tested to give the same numbers). Both read the same normalised GT and
results, built in memory (see `coco_format`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.coco_format import (
    WHOLEBODY_PARTS,
    ground_truth_part,
    normalize_ground_truth,
    normalize_results,
    results_part,
)
from posebh_cli.metrics.oks_fast import fast_keypoint_stats
from posebh_cli.metrics.oks_pycocotools import STAT_NAMES, pycocotools_keypoint_stats

BACKENDS = ("pycocotools", "fast")

__all__ = ["BACKENDS", "STAT_NAMES", "keypoint_ap", "oks_stats", "wholebody_part_ap"]


def oks_stats(gt: dict[str, Any], results: list[dict[str, Any]], sigmas: np.ndarray,
              backend: str = "pycocotools") -> dict[str, float]:
    """The 10 COCO keypoint stats for normalised GT/results and (K,) sigmas."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or len(sigmas) == 0 or not np.all(sigmas > 0):
        raise PosebhError(f"OKS sigmas must be a non-empty list of positive numbers, got "
                          f"shape {sigmas.shape}")
    if backend == "pycocotools":
        return pycocotools_keypoint_stats(gt, results, sigmas)
    if backend == "fast":
        return fast_keypoint_stats(gt, results, sigmas)
    raise PosebhError(f"unknown OKS backend '{backend}'; valid: {', '.join(BACKENDS)}")


def keypoint_ap(gt_dataset: dict[str, Any], results: list[dict[str, Any]], sigmas: np.ndarray,
                *, backend: str = "pycocotools", gt_source: str = "ground truth",
                results_source: str = "results") -> dict[str, float]:
    """OKS AP/AR of raw COCO-style GT and results for a K-keypoint skeleton.

    gt_dataset: parsed GT JSON (images, annotations, categories); results: COCO results
    records with flat K*3 keypoints; sigmas: (K,) OKS sigmas of the skeleton.
    """
    num_keypoints = len(np.asarray(sigmas))
    gt = normalize_ground_truth(gt_dataset, num_keypoints, gt_source)
    records = normalize_results(results, num_keypoints, gt, results_source)
    return oks_stats(gt, records, sigmas, backend)


def wholebody_part_ap(gt: dict[str, Any], results: list[dict[str, Any]], sigmas: np.ndarray,
                      *, backend: str = "pycocotools") -> dict[str, dict[str, float]]:
    """COCO-WholeBody scores per part (body, foot, face, lefthand, righthand) and whole.

    gt / results: normalised 133-keypoint GT and records; sigmas: (133,). Each part is scored
    with its slice of the keypoints and of the sigmas; a GT with no labelled keypoint in a
    part is ignored for that part.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if len(sigmas) != 133:
        raise PosebhError(f"COCO-WholeBody part scores need 133 sigmas, got {len(sigmas)}")
    scores = {}
    for part, (start, stop) in WHOLEBODY_PARTS.items():
        scores[part] = oks_stats(ground_truth_part(gt, start, stop),
                                 results_part(results, start, stop), sigmas[start:stop],
                                 backend)
    return scores
