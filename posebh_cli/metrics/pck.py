"""PCK, AUC and EPE on keypoint coordinates (METHOD.md §5-6: hands, InterHand2.6M, OneHand10K).

Definitions are those of the reference protocol (mmpose 0.x `keypoint_pck_accuracy`,
`keypoint_auc`, `keypoint_epe`, and the top-down `_report_metric` that feeds them):

- PCK@thr: a visible joint is correct when ||(pred - gt) / normaliser|| < thr (strict);
  accuracy per keypoint over the instances where it is visible, and the mean over the keypoints
  that have at least one visible instance (a mean of per-keypoint accuracies, not of all joints).
- Normaliser from the box: max(w, h) on both axes (the reference's hand PCK, `"max"`), or
  (w, h) per axis (`"wh"`: x errors divided by w, y errors by h).
- AUC: mean PCK over thresholds i / num_steps (i = 0 .. num_steps - 1) with a fixed normaliser
  of 30 px, i.e. PCK at 0, 1.5, ..., 28.5 px for the default 20 steps.
- EPE: mean pixel distance over all visible joints (one mean over joints, not per keypoint).

Rule for unusable normalisers (documented choice, tested): an instance whose normaliser is 0,
negative or not finite is left out entirely (as the reference masks instances with a zero
normaliser); results report how many were left out. A metric with no joint left is NaN - the
reference returns 0 there, which reads like a real score. Distances are float64 (the reference
stores them as float32, so a distance within float32 rounding of a threshold may differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebh_cli.errors import PosebhError

AUC_NORMALIZER_PX = 30.0
AUC_STEPS = 20


@dataclass(frozen=True)
class PckResult:
    """per_keypoint: (K,) accuracy in [0, 1], NaN for a keypoint never visible;
    mean: mean of the defined per-keypoint values (NaN when none); counts: (K,) visible joints
    scored per keypoint; excluded_instances: instances left out for an unusable normaliser."""

    per_keypoint: np.ndarray
    mean: float
    counts: np.ndarray
    excluded_instances: int


def _check_inputs(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible).astype(bool)
    if pred.ndim != 3 or pred.shape[-1] != 2 or pred.shape != gt.shape:
        raise PosebhError(f"PCK: pred and gt must both be (N, K, 2), got {pred.shape} and "
                          f"{gt.shape}")
    if visible.shape != pred.shape[:2]:
        raise PosebhError(f"PCK: visible must be (N, K) = {pred.shape[:2]}, got {visible.shape}")
    return pred, gt, visible


def _per_axis_normalizer(normalizer: np.ndarray | float, num: int) -> np.ndarray:
    """(N,), (N, 2) or a scalar -> (N, 2)."""
    norm = np.asarray(normalizer, dtype=np.float64)
    if norm.ndim == 0:
        return np.full((num, 2), float(norm))
    if norm.shape == (num,):
        return np.repeat(norm[:, None], 2, axis=1)
    if norm.shape == (num, 2):
        return norm.copy()
    raise PosebhError(f"PCK: normaliser must be a number, (N,) or (N, 2) with N={num}, got "
                      f"shape {norm.shape}")


def normalized_distances(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                         normalizer: np.ndarray | float) -> tuple[np.ndarray, int]:
    """Distances ||(pred - gt) / normaliser||: (N, K), NaN where not scored; and the number
    of instances left out for an unusable normaliser.

    pred, gt: (N, K, 2) px; visible: (N, K) bool; normalizer: scalar, (N,) or (N, 2) px.
    A visible joint with a non-finite prediction scores as infinitely far (a miss).
    """
    pred, gt, visible = _check_inputs(pred, gt, visible)
    norm = _per_axis_normalizer(normalizer, pred.shape[0])
    usable = np.all(np.isfinite(norm) & (norm > 0), axis=1)  # (N,)
    safe = np.where(usable[:, None], norm, 1.0)
    with np.errstate(invalid="ignore"):
        dist = np.linalg.norm((pred - gt) / safe[:, None, :], axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    scored = visible & usable[:, None]
    return np.where(scored, dist, np.nan), int(np.count_nonzero(~usable))


def _accuracy(dist: np.ndarray, thr: float, excluded: int) -> PckResult:
    scored = ~np.isnan(dist)
    counts = np.count_nonzero(scored, axis=0)
    hits = np.count_nonzero(scored & (np.nan_to_num(dist, nan=np.inf) < thr), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_keypoint = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    defined = per_keypoint[counts > 0]
    mean = float(defined.mean()) if len(defined) else float("nan")
    return PckResult(per_keypoint, mean, counts, excluded)


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
        normalizer: np.ndarray | float, thr: float) -> PckResult:
    """PCK@thr. pred, gt: (N, K, 2); visible: (N, K); normalizer: scalar, (N,) or (N, 2)."""
    dist, excluded = normalized_distances(pred, gt, visible, normalizer)
    return _accuracy(dist, thr, excluded)


def box_normalizer(boxes: np.ndarray, mode: str = "max") -> np.ndarray:
    """PCK normaliser from xywh boxes (N, 4): "max" -> (N,) max(w, h) (the reference's hand
    PCK); "wh" -> (N, 2) per-axis (w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if mode == "max":
        return np.max(boxes[:, 2:], axis=1)
    if mode == "wh":
        return boxes[:, 2:].copy()
    raise PosebhError(f"unknown PCK box normaliser '{mode}'; valid: max, wh")


def auc(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
        normalizer_px: float = AUC_NORMALIZER_PX, num_steps: int = AUC_STEPS) -> float:
    """Area under the PCK curve for thresholds 0 .. normalizer_px in num_steps steps
    (upper end excluded). pred, gt: (N, K, 2) px; visible: (N, K)."""
    if normalizer_px <= 0 or num_steps < 1:
        raise PosebhError(f"AUC: need normalizer_px > 0 and num_steps >= 1, got "
                          f"{normalizer_px} and {num_steps}")
    dist, excluded = normalized_distances(pred, gt, visible, normalizer_px)
    total = 0.0
    for i in range(num_steps):
        total += 1.0 / num_steps * _accuracy(dist, 1.0 * i / num_steps, excluded).mean
    return total


def epe(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> float:
    """End-point error: mean px distance over visible joints (NaN when none).
    pred, gt: (N, K, 2) px; visible: (N, K)."""
    dist, _ = normalized_distances(pred, gt, visible, 1.0)
    scored = dist[~np.isnan(dist)]
    return float(scored.mean()) if len(scored) else float("nan")
