"""COCO-style ground truth and COCO results, checked and normalised in memory (METHOD.md §5-6).

Both OKS backends (pycocotools and our vectorised one) read the SAME normalised dicts, so they
see the same numbers. Normalisation follows the conventions pycocotools users rely on:

- GT keypoints: flat [x, y, v] * K, or nested [[x, y, v]] * K (RHD), or COCO-WholeBody's split
  arrays (keypoints + foot_kpts + face_kpts + lefthand_kpts + righthand_kpts -> 133).
- GT without `area`: 0.53 x box area (datasets without masks, METHOD.md §5).
- GT without `num_keypoints`: the count of keypoints with v > 0.
- `iscrowd` as a bool, or APT-36K's `is_crowd`: an int; missing: 0.
- GT without `id`: running ids from 1 (pycocotools treats a matched GT id of 0 as "unmatched").
- Missing `categories`: built from the annotations' category ids.
- Results: only image_id, category_id, keypoints, score (and `ann_id`, used to pair PCK
  predictions with GT) are kept, so pycocotools takes its keypoint branch (detection area =
  keypoint extent) whatever else a record carries (e.g. a `bbox`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.errors import PosebhError

AREA_FROM_BOX = 0.53
WHOLEBODY_ARRAYS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")
# COCO-WholeBody parts as [start, stop) keypoint ranges of the 133 (body, foot, face, hands).
WHOLEBODY_PARTS: dict[str, tuple[int, int]] = {
    "body": (0, 17),
    "foot": (17, 23),
    "face": (23, 91),
    "lefthand": (91, 112),
    "righthand": (112, 133),
    "whole": (0, 133),
}


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; PosebhError names the file (and line/column when malformed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PosebhError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise PosebhError(f"{path}: {what} path is a folder, expected a JSON file") from None
    except UnicodeDecodeError:
        raise PosebhError(f"{path}: {what} file is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PosebhError(f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: "
                          f"{error.msg}") from None


def _flat_keypoints(ann: dict[str, Any], num_keypoints: int, where: str) -> list[float]:
    if num_keypoints == 133 and "foot_kpts" in ann:
        values: list[Any] = []
        for key in WHOLEBODY_ARRAYS:
            if key not in ann:
                raise PosebhError(f"{where}: COCO-WholeBody annotation lacks '{key}'")
            values.extend(ann[key])
    else:
        values = ann.get("keypoints")
        if values is None:
            raise PosebhError(f"{where}: missing 'keypoints'")
        if values and isinstance(values[0], (list, tuple)):
            values = [v for triple in values for v in triple]
    if len(values) != 3 * num_keypoints:
        raise PosebhError(f"{where}: 'keypoints' holds {len(values)} values, expected "
                          f"{3 * num_keypoints} (x, y, v for {num_keypoints} keypoints)")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in values):
        raise PosebhError(f"{where}: 'keypoints' must hold finite numbers")
    return list(values)


def _box(ann: dict[str, Any], where: str) -> list[float]:
    box = ann.get("bbox")
    if (not isinstance(box, (list, tuple)) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise PosebhError(f"{where}: expected 'bbox' as [x, y, w, h] numbers, got {box!r}")
    return list(box)


def normalize_ground_truth(dataset: Any, num_keypoints: int, source: str) -> dict[str, Any]:
    """A pycocotools-ready GT dict (fresh objects; `dataset` is not modified).

    dataset: a parsed COCO-style GT JSON; num_keypoints: K of the skeleton being scored.
    Annotations keep only the fields the keypoint evaluation reads.
    """
    if not isinstance(dataset, dict):
        raise PosebhError(f"{source}: expected a COCO-style object with 'images' and "
                          f"'annotations', got {type(dataset).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(dataset.get(key), list):
            raise PosebhError(f"{source}: missing list '{key}' (COCO-style ground truth)")
    images = []
    for n, image in enumerate(dataset["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise PosebhError(f"{source}: images[{n}] has no 'id'")
        images.append({"id": image["id"]})
    annotations = []
    for n, ann in enumerate(dataset["annotations"]):
        where = f"{source}: annotations[{n}]"
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise PosebhError(f"{where}: expected an object with 'image_id'")
        keypoints = _flat_keypoints(ann, num_keypoints, where)
        box = _box(ann, where)
        crowd = ann.get("iscrowd", ann.get("is_crowd", 0))
        labelled = sum(1 for v in keypoints[2::3] if v > 0)
        annotations.append({
            "id": ann.get("id", n + 1),
            "image_id": ann["image_id"],
            "category_id": ann.get("category_id", 1),
            "keypoints": keypoints,
            "num_keypoints": ann.get("num_keypoints", labelled),
            "bbox": box,
            "area": ann["area"] if "area" in ann else AREA_FROM_BOX * box[2] * box[3],
            "iscrowd": int(bool(crowd)),
        })
    categories = dataset.get("categories")
    if isinstance(categories, list) and categories:
        categories = [{"id": c["id"], "name": str(c.get("name", c["id"]))}
                      for c in categories if isinstance(c, dict) and "id" in c]
    else:
        ids = sorted({a["category_id"] for a in annotations}) or [1]
        categories = [{"id": i, "name": str(i)} for i in ids]
    return {"images": images, "annotations": annotations, "categories": categories}


def ground_truth_part(gt: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Keypoints [start, stop) of a normalised GT; num_keypoints recounted for that part.

    A GT instance with no labelled keypoint in the part is then ignored for that part, as
    pycocotools ignores num_keypoints == 0 (COCO-WholeBody part scores, METHOD.md §5).
    """
    annotations = []
    for ann in gt["annotations"]:
        keypoints = ann["keypoints"][3 * start:3 * stop]
        annotations.append({**ann, "keypoints": keypoints,
                            "num_keypoints": sum(1 for v in keypoints[2::3] if v > 0)})
    return {**gt, "annotations": annotations}


def normalize_results(results: Any, num_keypoints: int, gt: dict[str, Any],
                      source: str) -> list[dict[str, Any]]:
    """Check a COCO keypoint results list against the GT; return fresh minimal records.

    results: [{image_id, category_id, keypoints: flat [x, y, score] * K, score}, ...].
    category_id may be left out when the GT has a single category.
    """
    if not isinstance(results, list):
        raise PosebhError(f"{source}: expected a JSON list of results "
                          f"(COCO results format), got {type(results).__name__}")
    image_ids = {image["id"] for image in gt["images"]}
    categories = [c["id"] for c in gt["categories"]]
    records = []
    for n, record in enumerate(results):
        where = f"{source}: record {n}"
        if not isinstance(record, dict):
            raise PosebhError(f"{where}: expected an object, got {type(record).__name__}")
        for key in ("image_id", "keypoints", "score"):
            if key not in record:
                raise PosebhError(f"{where}: missing '{key}'")
        keypoints = record["keypoints"]
        if not isinstance(keypoints, list) or len(keypoints) != 3 * num_keypoints:
            count = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
            raise PosebhError(f"{where}: 'keypoints' holds {count} values, expected "
                              f"{3 * num_keypoints} (flat x, y, score for K={num_keypoints})")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in keypoints):
            raise PosebhError(f"{where}: 'keypoints' must hold finite numbers")
        score = record["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(
                score):
            raise PosebhError(f"{where}: 'score' must be a finite number, got {score!r}")
        if record["image_id"] not in image_ids:
            raise PosebhError(f"{where}: image_id {record['image_id']!r} is not an image of the "
                              f"ground truth")
        if "category_id" in record:
            category = record["category_id"]
        elif len(categories) == 1:
            category = categories[0]
        else:
            raise PosebhError(f"{where}: missing 'category_id' (the ground truth has "
                              f"{len(categories)} categories)")
        clean = {"image_id": record["image_id"], "category_id": category,
                 "keypoints": list(keypoints), "score": score}
        if "ann_id" in record:  # pairs a prediction with its GT instance for PCK
            clean["ann_id"] = record["ann_id"]
        records.append(clean)
    return records


def results_part(records: list[dict[str, Any]], start: int, stop: int) -> list[dict[str, Any]]:
    """Keypoints [start, stop) of every result record (COCO-WholeBody part scoring)."""
    return [{**r, "keypoints": r["keypoints"][3 * start:3 * stop]} for r in records]


def keypoint_array(records: list[dict[str, Any]], num_keypoints: int) -> np.ndarray:
    """records' flat keypoints -> (N, K, 3) float64."""
    if not records:
        return np.zeros((0, num_keypoints, 3))
    return np.asarray([r["keypoints"] for r in records], dtype=np.float64).reshape(
        len(records), num_keypoints, 3)
