"""OKS keypoint AP/AR as pycocotools computes it, vectorised with numpy (METHOD.md §6).

The same maths as COCOeval (iouType "keypoints") evaluate + accumulate + summarize, step for
step, but over arrays of all images at once instead of Python loops per image and detection:

1. Group GT and detections by (category, image); inside a group GT keep file order and
   detections are sorted by score (stable mergesort, as pycocotools), keeping the top 20.
2. OKS of every (detection, GT) pair of a group. The per-keypoint terms and their sum are
   computed with the same numpy operations on the same compacted (visible-keypoint) rows, so
   each OKS is bit-identical to pycocotools' (numpy reduces each contiguous row the same way).
3. Greedy matching, detection rank by rank, for all groups and all 10 OKS thresholds at once:
   a detection takes the best still-free non-ignored GT (ties -> the later GT, as the
   sequential `>=` update picks), and only when there is none, the best ignored GT (crowd GT
   can take any number of detections).
4. Accumulation per (category, area range): detections of all images merged by a stable
   score sort, cumulative TP/FP, precision envelope, 101 recall thresholds.

Quirks kept on purpose, because the goal is identical numbers: a detection matched to a GT whose
id is 0 counts as unmatched (pycocotools stores matches as ids and tests them for truth), and
undefined entries are -1.
pycocotools stays the oracle: tests compare the two on many random cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posebh_cli.metrics.coco_format import keypoint_array
from posebh_cli.metrics.oks_pycocotools import STAT_NAMES

# COCOeval keypoint parameters (Params.setKpParams), built with the same numpy calls.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
AREA_RANGES = ((0 ** 2, 1e5 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
AREA_LABELS = ("all", "medium", "large")
MAX_DETS = 20


def _group_rank(keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each element inside its group, given `order` sorting by (key, ...)."""
    rank = np.empty(len(order), dtype=np.int64)
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return rank


def _pair_oks(g_kpts: np.ndarray, g_box: np.ndarray, g_area: np.ndarray,
              d_kpts: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """OKS of P (GT, detection) pairs, exactly as COCOeval.computeOks.

    g_kpts, d_kpts: (P, K, 3); g_box: (P, 4) xywh; g_area: (P,). Returns (P,).
    """
    variances = (sigmas * 2) ** 2
    xg, yg, vg = g_kpts[..., 0], g_kpts[..., 1], g_kpts[..., 2]
    xd, yd = d_kpts[..., 0], d_kpts[..., 1]
    visible = vg > 0
    labelled = np.count_nonzero(visible, axis=1)  # (P,)
    dx = xd - xg
    dy = yd - yg
    unlabelled = labelled == 0
    if unlabelled.any():
        # GT without labelled keypoints: distance to a box twice the GT box size.
        box = g_box[unlabelled]
        x0 = (box[:, 0] - box[:, 2])[:, None]
        x1 = (box[:, 0] + box[:, 2] * 2)[:, None]
        y0 = (box[:, 1] - box[:, 3])[:, None]
        y1 = (box[:, 1] + box[:, 3] * 2)[:, None]
        xu, yu = xd[unlabelled], yd[unlabelled]
        zero = np.zeros_like(xu)
        dx[unlabelled] = np.maximum(zero, x0 - xu) + np.maximum(zero, xu - x1)
        dy[unlabelled] = np.maximum(zero, y0 - yu) + np.maximum(zero, yu - y1)
        visible[unlabelled] = True
    e = (dx ** 2 + dy ** 2) / variances / (g_area[:, None] + np.spacing(1)) / 2
    oks = np.empty(len(e))
    count = np.where(unlabelled, e.shape[1], labelled)
    for n in np.unique(count):
        rows = np.flatnonzero(count == n)
        # Row-major boolean selection keeps each row's visible terms contiguous and in order,
        # so the row sums match pycocotools' 1-D sums bit for bit.
        terms = e[rows][visible[rows]].reshape(len(rows), n)
        oks[rows] = np.sum(np.exp(-terms), axis=1) / n
    return oks


def _pick(candidates: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: any candidate, and the LAST candidate index holding the maximum OKS.

    candidates: (R, T, G) bool; iou: (R, 1, G). Returns has (R, T) and index (R, T).
    """
    values = np.where(candidates, iou, -np.inf)
    best = values.max(axis=-1, keepdims=True)
    winners = candidates & (values == best)
    last = winners.shape[-1] - 1 - np.argmax(winners[..., ::-1], axis=-1)
    return candidates.any(axis=-1), last


def fast_keypoint_eval(gt: dict[str, Any], results: list[dict[str, Any]],
                       sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval keypoint precision (T, R, C, A, 1) and recall (T, C, A, 1), -1 where undefined.

    gt / results: normalised dicts and records (see `coco_format`); sigmas: (K,).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    num_kpts = len(sigmas)
    image_ids = sorted({image["id"] for image in gt["images"]})
    category_ids = sorted({c["id"] for c in gt["categories"]})
    image_index = {i: n for n, i in enumerate(image_ids)}
    category_index = {c: n for n, c in enumerate(category_ids)}
    num_images = len(image_ids)
    T, R, C, A = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(category_ids), len(AREA_RANGES)
    precision = -np.ones((T, R, C, A, 1))
    recall = -np.ones((T, C, A, 1))

    anns = [a for a in gt["annotations"]
            if a["image_id"] in image_index and a["category_id"] in category_index]
    dets = [d for d in results
            if d["image_id"] in image_index and d["category_id"] in category_index]
    g_key = np.asarray([category_index[a["category_id"]] * num_images
                        + image_index[a["image_id"]] for a in anns], dtype=np.int64)
    d_key = np.asarray([category_index[d["category_id"]] * num_images
                        + image_index[d["image_id"]] for d in dets], dtype=np.int64)
    d_score = np.asarray([d["score"] for d in dets], dtype=np.float64)
    # Detections: by group, then score (stable), keep the first MAX_DETS of each group.
    d_order = np.lexsort((np.arange(len(dets)), -d_score, d_key))
    d_rank = _group_rank(d_key, d_order) if len(dets) else np.zeros(0, dtype=np.int64)
    kept = d_order[d_rank[d_order] < MAX_DETS]
    g_order = np.lexsort((np.arange(len(anns)), g_key))
    g_slot = _group_rank(g_key, g_order) if len(anns) else np.zeros(0, dtype=np.int64)

    groups = np.unique(np.r_[g_key, d_key[kept]])
    num_groups = len(groups)
    if num_groups == 0:
        return precision, recall
    g_group = np.searchsorted(groups, g_key)
    d_group = np.searchsorted(groups, d_key[kept])
    d_slot = d_rank[kept]
    n_gt = np.bincount(g_group, minlength=num_groups)
    n_dt = np.bincount(d_group, minlength=num_groups)
    g_max, d_max = max(int(n_gt.max()), 1), max(int(n_dt.max()), 1)

    g_kpts = keypoint_array(anns, num_kpts)
    g_box = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    g_area = np.asarray([a["area"] for a in anns], dtype=np.float64)
    g_crowd = np.asarray([int(a["iscrowd"]) for a in anns], dtype=bool)
    g_ignore = g_crowd | np.asarray([a["num_keypoints"] == 0 for a in anns], dtype=bool)
    g_id_nonzero = np.asarray([a["id"] != 0 for a in anns], dtype=bool)
    kept_dets = [dets[i] for i in kept]
    d_kpts = keypoint_array(kept_dets, num_kpts)
    # Detection area as pycocotools.loadRes: the extent of its keypoints.
    d_area = ((d_kpts[..., 0].max(axis=1) - d_kpts[..., 0].min(axis=1))
              * (d_kpts[..., 1].max(axis=1) - d_kpts[..., 1].min(axis=1)))

    # OKS of every (detection, GT) pair sharing a group -> padded (groups, d_max, g_max).
    gt_at = np.full((num_groups, g_max), -1, dtype=np.int64)
    gt_at[g_group, g_slot] = np.arange(len(anns))
    pairs_per_dt = n_gt[d_group]
    pair_dt = np.repeat(np.arange(len(kept)), pairs_per_dt)
    pair_slot = np.arange(len(pair_dt)) - np.repeat(np.cumsum(pairs_per_dt) - pairs_per_dt,
                                                     pairs_per_dt)
    pair_gt = gt_at[d_group[pair_dt], pair_slot]
    ious = -np.ones((num_groups, d_max, g_max))
    if len(pair_dt):
        ious[d_group[pair_dt], d_slot[pair_dt], pair_slot] = _pair_oks(
            g_kpts[pair_gt], g_box[pair_gt], g_area[pair_gt], d_kpts[pair_dt], sigmas)

    def padded_gt(values: np.ndarray, fill: bool) -> np.ndarray:
        out = np.full((num_groups, g_max), fill, dtype=bool)
        out[g_group, g_slot] = values
        return out

    gt_exists = padded_gt(np.ones(len(anns), dtype=bool), False)
    gt_crowd = padded_gt(g_crowd, False)
    gt_id_nonzero = padded_gt(g_id_nonzero, False)
    dt_exists = np.arange(d_max)[None, :] < n_dt[:, None]  # (groups, d_max)
    dt_score = np.zeros((num_groups, d_max))
    dt_score[d_group, d_slot] = d_score[kept]
    dt_area = np.zeros((num_groups, d_max))
    dt_area[d_group, d_slot] = d_area
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None]  # (1, T, 1)
    group_category = groups // num_images
    rows = np.arange(num_groups)[:, None]

    for a, (low, high) in enumerate(AREA_RANGES):
        ignored = padded_gt(g_ignore | (g_area < low) | (g_area > high), True)
        matched = np.zeros((num_groups, T, g_max), dtype=bool)
        dt_true = np.zeros((num_groups, T, d_max), dtype=bool)  # matched to a GT with id != 0
        dt_ignored = np.zeros((num_groups, T, d_max), dtype=bool)
        for d in range(d_max):
            iou = ious[:, d, :][:, None, :]
            free = (~matched | gt_crowd[:, None, :]) & (iou >= thresholds)
            has_regular, pick_regular = _pick(free & ~ignored[:, None, :], iou)
            has_ignored, pick_ignored = _pick(free & (ignored & gt_exists)[:, None, :], iou)
            has = (has_regular | has_ignored) & dt_exists[:, d, None]
            pick = np.where(has_regular, pick_regular, pick_ignored)
            hit_rows, hit_t = np.nonzero(has)
            matched[hit_rows, hit_t, pick[hit_rows, hit_t]] = True
            dt_true[:, :, d] = has & gt_id_nonzero[rows, pick]
            dt_ignored[:, :, d] = has & ignored[rows, pick]
        out_of_range = (dt_area < low) | (dt_area > high)
        dt_ignored |= ~dt_true & out_of_range[:, None, :]
        regular_gt = np.count_nonzero(~ignored & gt_exists, axis=1)  # (groups,)
        for c in range(C):
            in_category = group_category == c
            if not in_category.any():
                continue
            npig = int(regular_gt[in_category].sum())
            if npig == 0:
                continue
            sel = dt_exists[in_category]  # (Gc, d_max): image order, then score rank
            scores = dt_score[in_category][sel]
            order = np.argsort(-scores, kind="mergesort")
            true_pos = np.stack([dt_true[in_category][:, t][sel] for t in range(T)])[:, order]
            ignore = np.stack([dt_ignored[in_category][:, t][sel] for t in range(T)])[:, order]
            tp_sum = np.cumsum(true_pos & ~ignore, axis=1).astype(dtype=float)
            fp_sum = np.cumsum(~true_pos & ~ignore, axis=1).astype(dtype=float)
            _precision_recall(tp_sum, fp_sum, npig, precision[:, :, c, a, 0], recall[:, c, a, 0])
    return precision, recall


def _precision_recall(tp_sum: np.ndarray, fp_sum: np.ndarray, npig: int,
                      precision_out: np.ndarray, recall_out: np.ndarray) -> None:
    """Fill precision (T, R) and recall (T,) from cumulative TP/FP (T, D), as accumulate()."""
    num_dets = tp_sum.shape[1]
    rc = tp_sum / npig
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    recall_out[:] = rc[:, -1] if num_dets else 0
    if num_dets == 0:
        precision_out[:] = 0
        return
    # Precision envelope: each point takes the best precision at any higher recall.
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    for t in range(len(rc)):
        inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        inside = inds < num_dets
        precision_out[t] = np.where(inside, pr[t, np.minimum(inds, num_dets - 1)], 0)


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The 10 keypoint stats of COCOeval.summarize (mean over defined entries, else -1)."""

    def mean(ap: bool, iou: float | None = None, area: str = "all") -> float:
        a = [AREA_LABELS.index(area)]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        s = s[:, :, :, a, [0]] if ap else s[:, :, a, [0]]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    values = [mean(True), mean(True, .5), mean(True, .75), mean(True, area="medium"),
              mean(True, area="large"), mean(False), mean(False, .5), mean(False, .75),
              mean(False, area="medium"), mean(False, area="large")]
    return dict(zip(STAT_NAMES, values, strict=True))


def fast_keypoint_stats(gt: dict[str, Any], results: list[dict[str, Any]],
                        sigmas: np.ndarray) -> dict[str, float]:
    """{AP, AP50, ..., AR_L}, equal to pycocotools' numbers."""
    return summarize(*fast_keypoint_eval(gt, results, sigmas))
