"""What every reader shares: JSON loading, field parsing, record rejection and the table builder.

Field parsers raise `InvalidRecord` (a field-level message); the reader loop catches it and hands
it to `RecordIssues`, which either stops with a `PosebhError` naming the file, the record and the
field, or (with `skip_invalid`) counts the record and keeps the first few reasons for the summary.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError

# How many rejection reasons a report keeps (the count is always exact).
MAX_PROBLEMS = 10
# Datasets without instance masks take 0.53 x box area for OKS (METHOD.md §5).
BOX_AREA_FACTOR = 0.53

Progress = Callable[[int, int], None]
"""progress(done, total): called while checking images (the slow part of reading)."""


class InvalidRecord(Exception):
    """One record's field is malformed; the message names the field and what was expected."""


@dataclass
class ReadReport:
    """What a reader saw: counts plus the first few reasons records were rejected."""

    ann_file: str
    images: int = 0
    instances: int = 0
    invalid_images: int = 0
    invalid_instances: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ann_file": self.ann_file, "images": self.images, "instances": self.instances,
                "invalid_images": self.invalid_images,
                "invalid_instances": self.invalid_instances, "problems": list(self.problems)}


class RecordIssues:
    """Reject one record: stop with a clear error, or count it when skipping invalid records."""

    def __init__(self, ann_file: str | os.PathLike[str], report: ReadReport,
                 skip_invalid: bool) -> None:
        self.ann_file = str(ann_file)
        self.report = report
        self.skip_invalid = skip_invalid

    def reject(self, where: str, reason: str, *, image: bool = False) -> None:
        message = f"{self.ann_file}: {where}: {reason}"
        if not self.skip_invalid:
            raise PosebhError(f"{message} (use --skip-invalid to drop and count such records)")
        if image:
            self.report.invalid_images += 1
        else:
            self.report.invalid_instances += 1
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(message)


def load_json(path: str | os.PathLike[str], what: str = "annotation file") -> Any:
    """Parse a JSON file; a missing, unreadable, truncated or corrupt file is a PosebhError."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise PosebhError(f"{path}: {what} not found") from None
    except (IsADirectoryError, PermissionError) as error:
        raise PosebhError(f"{path}: cannot read {what} ({error.__class__.__name__})") from None
    except json.JSONDecodeError as error:
        raise PosebhError(f"{path}: not valid JSON at line {error.lineno} column {error.colno} "
                          f"({error.msg}); is the file truncated or corrupt?") from None
    except UnicodeDecodeError:
        raise PosebhError(f"{path}: not valid JSON (not UTF-8 text)") from None


def expect_coco_layout(data: Any, path: str | os.PathLike[str]) -> tuple[list, list]:
    """(images, annotations) of a COCO-style file, or a PosebhError saying what is missing."""
    if not isinstance(data, dict):
        raise PosebhError(f"{path}: expected a COCO-style JSON object with 'images' and "
                          f"'annotations' lists, got a {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise PosebhError(f"{path}: missing key '{key}' (a list) at the top level")
    return data["images"], data["annotations"]


def require(record: Any, key: str) -> Any:
    if not isinstance(record, dict):
        raise InvalidRecord(f"expected an object, got {type(record).__name__}")
    if key not in record:
        raise InvalidRecord(f"missing key '{key}'")
    return record[key]


def parse_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRecord(f"field '{key}': expected an integer, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidRecord(f"field '{key}': expected an integer, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise InvalidRecord(f"field '{key}': expected an integer, got {value!r}")
    return int(number)


def parse_float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRecord(f"field '{key}': expected a number, got {_short(value)}")
    return float(value)


def parse_flag(value: Any, key: str) -> bool:
    """0/1, true/false (JSON bools appear in PoseTrack-style files) -> bool."""
    if isinstance(value, (bool, int, float)) and value in (0, 1):
        return bool(value)
    raise InvalidRecord(f"field '{key}': expected 0/1 or true/false, got {value!r}")


def parse_box(value: Any, key: str = "bbox") -> np.ndarray:
    """xywh (int or float) -> (4,) float32 with w > 0 and h > 0."""
    try:
        box = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidRecord(f"field '{key}': expected 4 numbers [x, y, w, h], got "
                            f"{_short(value)}") from None
    if box.shape != (4,):
        raise InvalidRecord(f"field '{key}': expected 4 numbers [x, y, w, h], got "
                            f"{_short(value)}")
    if not np.all(np.isfinite(box)):
        raise InvalidRecord(f"field '{key}': non-finite value in {box.tolist()}")
    if box[2] <= 0 or box[3] <= 0:
        raise InvalidRecord(f"field '{key}': w and h must be > 0, got {box.tolist()}")
    return box.astype(np.float32)


def parse_keypoints(value: Any, num_keypoints: int, skeleton: str,
                    key: str = "keypoints") -> np.ndarray:
    """Flat [x, y, v] * K or nested K x [x, y, v] (ints or floats) -> (K, 3) float32."""
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidRecord(f"field '{key}': expected numbers [x, y, v] per keypoint, got "
                            f"{_short(value)}") from None
    if points.ndim == 1 and points.size % 3 == 0:
        points = points.reshape(-1, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidRecord(f"field '{key}': expected a flat list of K*3 numbers or K "
                            f"[x, y, v] triples, got shape {list(points.shape)}")
    if points.shape[0] != num_keypoints:
        raise InvalidRecord(f"field '{key}': skeleton '{skeleton}' has {num_keypoints} "
                            f"keypoints, the record has {points.shape[0]}")
    if not np.all(np.isfinite(points)):
        raise InvalidRecord(f"field '{key}': non-finite value")
    if np.any(points[:, 2] < 0):
        raise InvalidRecord(f"field '{key}': negative visibility")
    return points.astype(np.float32)


def box_area(box: np.ndarray) -> float:
    return float(BOX_AREA_FACTOR * box[2] * box[3])


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TableBuilder:
    """Accumulate image rows and instance rows, then freeze them into an `InstanceTable`."""

    def __init__(self, num_keypoints: int) -> None:
        self.num_keypoints = num_keypoints
        self.image_files: list[str] = []
        self.image_ids: list[int] = []
        self.image_sizes: list[tuple[int, int]] = []
        self.image_index: list[int] = []
        self.boxes: list[np.ndarray] = []
        self.keypoints: list[np.ndarray] = []
        self.areas: list[float] = []
        self.instance_ids: list[int] = []
        self.category_ids: list[int] = []
        self.scores: list[float] = []
        self.extras: dict[str, list[Any]] = {}

    def add_image(self, file_name: str, image_id: int, height: int = 0, width: int = 0) -> int:
        self.image_files.append(file_name)
        self.image_ids.append(image_id)
        self.image_sizes.append((height, width))
        return len(self.image_files) - 1

    def add_instance(self, image_index: int, box: np.ndarray, keypoints: np.ndarray, *,
                     area: float, instance_id: int, category_id: int, score: float = 1.0,
                     **extras: Any) -> None:
        """keypoints: (K, 3); extras: one value per extra column (the same names every call)."""
        self.image_index.append(image_index)
        self.boxes.append(box)
        self.keypoints.append(keypoints)
        self.areas.append(area)
        self.instance_ids.append(instance_id)
        self.category_ids.append(category_id)
        self.scores.append(score)
        for name, value in extras.items():
            self.extras.setdefault(name, []).append(value)

    def build(self, *, dataset: str, skeleton: str, image_root: str,
              meta: dict[str, Any]) -> InstanceTable:
        n, k = len(self.boxes), self.num_keypoints
        extras = {name: np.asarray(values) for name, values in self.extras.items()}
        for name, column in extras.items():
            if column.shape[0] != n:
                raise ValueError(f"extra column '{name}' has {column.shape[0]} rows, not {n}")
        return InstanceTable(
            dataset=dataset,
            skeleton=skeleton,
            image_root=image_root,
            image_files=np.asarray(self.image_files, dtype=np.str_).reshape(-1),
            image_ids=np.asarray(self.image_ids, dtype=np.int64),
            image_sizes=np.asarray(self.image_sizes, dtype=np.int32).reshape(-1, 2),
            image_index=np.asarray(self.image_index, dtype=np.int64),
            boxes=np.asarray(self.boxes, dtype=np.float32).reshape(n, 4),
            keypoints=np.asarray(self.keypoints, dtype=np.float32).reshape(n, k, 3),
            areas=np.asarray(self.areas, dtype=np.float32),
            instance_ids=np.asarray(self.instance_ids, dtype=np.int64),
            category_ids=np.asarray(self.category_ids, dtype=np.int64),
            scores=np.asarray(self.scores, dtype=np.float32),
            extras=extras,
            meta=meta,
        )
