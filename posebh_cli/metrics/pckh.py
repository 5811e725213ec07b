"""MPII PCKh (METHOD.md §5-6): head-size-normalised PCK as the reference protocol scores it.

As the reference MPII evaluation (mmpose 0.x `TopDownMpiiDataset.evaluate`):
- head size = 0.6 (SC_BIAS) x the diagonal of the annotated head box;
- a visible joint is correct when distance / head size <= thr (inclusive, unlike PCK's `<`);
- per-joint PCKh over the instances where that joint is visible;
- the mean weights joints by their visible counts and leaves out pelvis and thorax (MPII
  joints 6 and 7), so it equals (hits / joints) over the other 14 joints.
Values are fractions in [0, 1] (the reference prints percent). Instances whose head size is 0
or not finite are left out (same rule as `pck`), and a mean with no joint left is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebh_cli.errors import PosebhError
from posebh_cli.metrics.pck import normalized_distances

SC_BIAS = 0.6
MPII_EXCLUDED_FROM_MEAN = (6, 7)  # pelvis, thorax
# Named groups of the reference report, by MPII joint index (right, left).
MPII_GROUPS = {
    "Head": (9, 9), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15),
    "Hip": (2, 3), "Knee": (1, 4), "Ankle": (0, 5),
}


@dataclass(frozen=True)
class PckhResult:
    """per_keypoint: (K,) PCKh, NaN for joints never visible; mean: count-weighted mean over
    the joints not in `excluded_from_mean`; counts: (K,); excluded_instances: head size 0."""

    per_keypoint: np.ndarray
    mean: float
    counts: np.ndarray
    excluded_instances: int


def head_sizes(head_boxes: np.ndarray, sc_bias: float = SC_BIAS) -> np.ndarray:
    """(N, 4) head boxes as corners (x1, y1, x2, y2) -> (N,) sc_bias x diagonal length."""
    boxes = np.asarray(head_boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise PosebhError(f"PCKh: head boxes must be (N, 4) corners x1, y1, x2, y2, got "
                          f"shape {boxes.shape}")
    return np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1) * sc_bias


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_boxes: np.ndarray,
         thr: float = 0.5, sc_bias: float = SC_BIAS,
         excluded_from_mean: tuple[int, ...] = MPII_EXCLUDED_FROM_MEAN) -> PckhResult:
    """PCKh@thr. pred, gt: (N, K, 2) px; visible: (N, K); head_boxes: (N, 4) corners."""
    sizes = head_sizes(head_boxes, sc_bias)
    dist, excluded = normalized_distances(pred, gt, visible, sizes)
    scored = ~np.isnan(dist)
    counts = np.count_nonzero(scored, axis=0)
    hits = np.count_nonzero(scored & (np.nan_to_num(dist, nan=np.inf) <= thr), axis=0)
    per_keypoint = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    in_mean = np.ones(len(counts), dtype=bool)
    in_mean[[i for i in excluded_from_mean if i < len(counts)]] = False
    total = counts[in_mean].sum()
    mean = float(hits[in_mean].sum() / total) if total else float("nan")
    return PckhResult(per_keypoint, mean, counts, excluded)


def mpii_report(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                head_boxes: np.ndarray) -> dict[str, float]:
    """The reference MPII report: named joint groups at 0.5, PCKh (@0.5) and PCKh@0.1."""
    at_half = pckh(pred, gt, visible, head_boxes, 0.5)
    at_tenth = pckh(pred, gt, visible, head_boxes, 0.1)
    report = {name: float(0.5 * (at_half.per_keypoint[r] + at_half.per_keypoint[left]))
              for name, (r, left) in MPII_GROUPS.items()}
    report["PCKh"] = at_half.mean
    report["PCKh@0.1"] = at_tenth.mean
    return report
