"""MPII Human Pose in its JSON list form: {image, center, scale = h/200, joints, joints_vis}.

The box is the square of side 200 * scale around `center`, with the centre moved down by
15 * scale pixels (the MPII convention that keeps the feet inside the crop). MPII coordinates
are 1-based (MATLAB); centre and joints are shifted to 0-based pixels, and `meta` records the
shift so PCKh evaluation against `mpii_gt_val.mat` can add it back. `joints_vis` marks labelled
joints: they become v = 2, the others v = 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posebh_cli.data.readers.common import (
    InvalidRecord,
    ReadReport,
    RecordIssues,
    TableBuilder,
    box_area,
    load_json,
    parse_box,
    require,
)
from posebh_cli.data.readers.images import check_images as run_image_checks
from posebh_cli.data.readers.registry import register_reader
from posebh_cli.errors import PosebhError
from posebh_cli.skeletons import get_skeleton

MPII_SCALE_PIXELS = 200.0
CENTER_SHIFT = 15.0


def mpii_box(center: np.ndarray, scale: float) -> np.ndarray:
    """center: (2,) 1-based; scale = h/200 -> (4,) float32 xywh in 0-based pixels."""
    side = MPII_SCALE_PIXELS * scale
    cx, cy = center[0] - 1.0, center[1] + CENTER_SHIFT * scale - 1.0
    return np.array([cx - side / 2, cy - side / 2, side, side], dtype=np.float32)


def _parse_record(record: dict, num_keypoints: int, skeleton: str):
    image = require(record, "image")
    if not isinstance(image, str) or not image:
        raise InvalidRecord(f"field 'image': expected a file name, got {image!r}")
    try:
        center = np.asarray(require(record, "center"), dtype=np.float64)
        scale = float(require(record, "scale"))
        joints = np.asarray(require(record, "joints"), dtype=np.float64)
        visible = np.asarray(require(record, "joints_vis"), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise InvalidRecord(f"non-numeric center/scale/joints ({error})") from None
    if center.shape != (2,):
        raise InvalidRecord(f"field 'center': expected [x, y], got shape {list(center.shape)}")
    if joints.ndim != 2 or joints.shape[1] not in (2, 3):
        raise InvalidRecord(f"field 'joints': expected K [x, y] pairs, got shape "
                            f"{list(joints.shape)}")
    if joints.shape[0] != num_keypoints:
        raise InvalidRecord(f"field 'joints': skeleton '{skeleton}' has {num_keypoints} "
                            f"keypoints, the record has {joints.shape[0]}")
    if visible.shape[0] != num_keypoints:
        raise InvalidRecord(f"field 'joints_vis': expected {num_keypoints} flags, got "
                            f"{visible.shape[0]}")
    box = parse_box(mpii_box(center, scale).tolist(), "scale")
    keypoints = np.zeros((num_keypoints, 3), dtype=np.float32)
    labelled = visible > 0
    keypoints[:, :2] = joints[:, :2] - 1.0
    keypoints[:, 2] = np.where(labelled, 2.0, 0.0)
    keypoints[~labelled, :2] = 0.0
    return image, box, keypoints


@register_reader("mpii", "mpii")
def read_mpii(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
              check_images=False, progress=None):
    """Read an MPII JSON list; image ids are 1-based in order of first appearance."""
    ann_path, image_root = Path(ann_path), Path(image_root)
    num_keypoints = get_skeleton(skeleton).num_keypoints
    data = load_json(ann_path)
    if not isinstance(data, list):
        raise PosebhError(f"{ann_path}: expected the MPII JSON list of {{image, center, scale, "
                          f"joints, joints_vis}} records, got a {type(data).__name__}")
    report = ReadReport(ann_file=str(ann_path))
    issues = RecordIssues(ann_path, report, skip_invalid)
    parsed = []
    for i, record in enumerate(data):
        try:
            parsed.append((i, *_parse_record(record, num_keypoints, skeleton)))
        except InvalidRecord as bad:
            issues.reject(f"record [{i}]", str(bad))
    names = list(dict.fromkeys(image for _, image, _, _ in parsed))
    checks = run_image_checks([os.path.join(image_root, n) for n in names],
                              decode=check_images, progress=progress)
    builder = TableBuilder(num_keypoints)
    row_of: dict[str, int] = {}
    for image_id, (name, check) in enumerate(zip(names, checks, strict=True), start=1):
        problem, (height, width) = check
        if problem is not None:
            issues.reject(f"image '{name}'", problem, image=True)
            continue
        row_of[name] = builder.add_image(name, image_id, height, width)
    for i, image, box, keypoints in parsed:
        if image not in row_of:
            issues.reject(f"record [{i}]", f"its image '{image}' was rejected")
            continue
        builder.add_instance(row_of[image], box, keypoints, area=box_area(box), instance_id=i,
                             category_id=1, iscrowd=False)
    meta = {"format": "mpii", "ann_file": str(ann_path.resolve()), "coordinate_offset": -1.0}
    table = builder.build(dataset=dataset_name, skeleton=skeleton, image_root=str(image_root),
                          meta=meta)
    table.extras.setdefault("iscrowd", np.zeros(len(table), dtype=bool))
    report.images, report.instances = table.num_images, len(table)
    return table, report
