"""COCO-style keypoint files: COCO, AIC, AP-10K, APT-36K (both layouts), OCHuman, OneHand10K,
synthetic, and (through `keypoints_of`) COCO-WholeBody.

Tolerated quirks (../shared/data/MANIFEST.md): int or float boxes and keypoints, flat or nested
keypoints, bool or int `iscrowd` (or APT-36K's `is_crowd`), missing `area` / `iscrowd` / `id`,
Windows paths. Every valid instance is kept, crowd and zero-keypoint ones included, with
`extras["iscrowd"]`: evaluation needs all ground truth, training filters (>= 1 labelled keypoint,
not crowd).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from posebh_cli.data.readers.common import (
    InvalidRecord,
    Progress,
    ReadReport,
    RecordIssues,
    TableBuilder,
    box_area,
    expect_coco_layout,
    load_json,
    parse_box,
    parse_flag,
    parse_float,
    parse_int,
    parse_keypoints,
    require,
)
from posebh_cli.data.readers.images import check_images as run_image_checks
from posebh_cli.data.readers.registry import register_reader
from posebh_cli.data.records import InstanceTable
from posebh_cli.skeletons import get_skeleton

KeypointParser = Callable[[dict, int, str], np.ndarray]


def coco_keypoints(annotation: dict, num_keypoints: int, skeleton: str) -> np.ndarray:
    return parse_keypoints(require(annotation, "keypoints"), num_keypoints, skeleton)


def relative_posix_path(file_name: str, parts: int | None) -> str:
    """Keep the last `parts` components of a (possibly Windows) path, joined with '/'."""
    if parts is None:
        return file_name.replace("\\", "/") if "\\" in file_name else file_name
    components = PureWindowsPath(file_name).parts
    return "/".join(components[-parts:])


def read_coco_style(
    ann_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    skeleton: str,
    *,
    dataset_name: str,
    skip_invalid: bool = False,
    check_images: bool = False,
    progress: Progress | None = None,
    data: Any = None,
    crowd_keys: tuple[str, ...] = ("iscrowd",),
    keypoints_of: KeypointParser = coco_keypoints,
    path_parts: int | None = None,
    extra_int_fields: tuple[tuple[str, str], ...] = (),
    format_name: str = "coco",
) -> tuple[InstanceTable, ReadReport]:
    """Read one COCO-style annotation file.

    data: the parsed JSON when the caller already holds it (APT-36K raw splitting).
    crowd_keys: the crowd flag's possible names, first found wins.
    path_parts: keep only the last n components of `file_name` (APT-36K's Windows paths).
    extra_int_fields: (json key, extras column) pairs copied per instance, -1 when absent.
    """
    ann_path = Path(ann_path)
    image_root = Path(image_root)
    num_keypoints = get_skeleton(skeleton).num_keypoints
    if data is None:
        data = load_json(ann_path)
    images, annotations = expect_coco_layout(data, ann_path)
    report = ReadReport(ann_file=str(ann_path))
    issues = RecordIssues(ann_path, report, skip_invalid)

    parsed_images: list[tuple[int, str, int, int]] = []
    seen_ids: set[int] = set()
    for i, image in enumerate(images):
        try:
            image_id = parse_int(require(image, "id"), "id")
            file_name = require(image, "file_name")
            if not isinstance(file_name, str) or not file_name:
                raise InvalidRecord(f"field 'file_name': expected a path, got {file_name!r}")
            if image_id in seen_ids:
                raise InvalidRecord(f"field 'id': image id {image_id} is used twice")
            height = parse_int(image.get("height", 0), "height")
            width = parse_int(image.get("width", 0), "width")
        except InvalidRecord as bad:
            issues.reject(f"images[{i}] (id {_id_of(image)})", str(bad), image=True)
            continue
        seen_ids.add(image_id)
        parsed_images.append((image_id, relative_posix_path(file_name, path_parts), height,
                              width))

    builder = TableBuilder(num_keypoints)
    row_of_image: dict[int, int] = {}
    checks = run_image_checks([str(image_root / f) for _, f, _, _ in parsed_images],
                              decode=check_images, progress=progress)
    for parsed, (problem, size) in zip(parsed_images, checks, strict=True):
        image_id, file_name, height, width = parsed
        if problem is not None:
            issues.reject(f"image id {image_id}", problem, image=True)
            continue
        if size != (0, 0):
            height, width = size
        row_of_image[image_id] = builder.add_image(file_name, image_id, height, width)
    rejected_images = seen_ids - set(row_of_image)

    for i, annotation in enumerate(annotations):
        try:
            image_id = parse_int(require(annotation, "image_id"), "image_id")
            if image_id not in row_of_image:
                reason = ("its image was rejected" if image_id in rejected_images
                          else "no image with this id in 'images'")
                raise InvalidRecord(f"field 'image_id': {image_id}: {reason}")
            box = parse_box(require(annotation, "bbox"))
            keypoints = keypoints_of(annotation, num_keypoints, skeleton)
            crowd = False
            for key in crowd_keys:
                if key in annotation:
                    crowd = parse_flag(annotation[key], key)
                    break
            area = parse_float(annotation.get("area", 0.0), "area")
            if not area > 0:
                area = box_area(box)
            instance_id = parse_int(annotation.get("id", i), "id")
            category_id = parse_int(annotation.get("category_id", 1), "category_id")
            extras = {column: parse_int(annotation.get(key, -1), key)
                      for key, column in extra_int_fields}
        except InvalidRecord as bad:
            issues.reject(f"annotations[{i}] (id {_id_of(annotation)})", str(bad))
            continue
        builder.add_instance(row_of_image[image_id], box, keypoints, area=area,
                             instance_id=instance_id, category_id=category_id,
                             iscrowd=crowd, **extras)

    meta = {"format": format_name, "ann_file": str(ann_path.resolve()),
            "categories": _categories(data)}
    table = builder.build(dataset=dataset_name, skeleton=skeleton, image_root=str(image_root),
                          meta=meta)
    if "iscrowd" not in table.extras:
        table.extras["iscrowd"] = np.zeros(len(table), dtype=bool)
    for _, column in extra_int_fields:
        table.extras.setdefault(column, np.zeros(len(table), dtype=np.int64))
    report.images, report.instances = table.num_images, len(table)
    return table, report


def _id_of(record: Any) -> Any:
    return record.get("id", "?") if isinstance(record, dict) else "?"


def _categories(data: dict) -> dict[str, str]:
    """{category id: name}: AP-10K / APT-36K species, kept for per-species summaries."""
    categories = data.get("categories") or []
    return {str(c["id"]): str(c.get("name", "")) for c in categories
            if isinstance(c, dict) and "id" in c}


def _register_plain(name: str, skeleton: str | None) -> None:
    @register_reader(name, skeleton)
    def read(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
             check_images=False, progress=None):
        return read_coco_style(ann_path, image_root, skeleton, dataset_name=dataset_name,
                               skip_invalid=skip_invalid, check_images=check_images,
                               progress=progress, format_name=name)

    read.__name__ = f"read_{name}"
    read.__doc__ = f"Read a COCO-style '{name}' keypoint file (see read_coco_style)."


for _name, _skeleton in (("coco", "coco"), ("aic", "aic"), ("ap10k", "ap10k"),
                         ("ochuman", "coco"), ("onehand10k", "onehand10k"),
                         ("synthetic", None)):
    _register_plain(_name, _skeleton)

APT36K_FIELDS = (("video_id", "video_ids"), ("track_id", "track_ids"))


@register_reader("apt36k", "apt36k")
def read_apt36k(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
                check_images=False, progress=None, data=None):
    """APT-36K after the video-level split: `iscrowd`, relative POSIX paths, video/track ids."""
    return read_coco_style(ann_path, image_root, skeleton, dataset_name=dataset_name,
                           skip_invalid=skip_invalid, check_images=check_images,
                           progress=progress, data=data, extra_int_fields=APT36K_FIELDS,
                           format_name="apt36k")


@register_reader("apt36k_raw", "apt36k")
def read_apt36k_raw(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
                    check_images=False, progress=None, data=None):
    """The raw `apt36k_annotations.json`: `is_crowd`, Windows paths (last 3 parts kept)."""
    return read_coco_style(ann_path, image_root, skeleton, dataset_name=dataset_name,
                           skip_invalid=skip_invalid, check_images=check_images,
                           progress=progress, data=data, crowd_keys=("is_crowd", "iscrowd"),
                           path_parts=3, extra_int_fields=APT36K_FIELDS,
                           format_name="apt36k_raw")
