"""InterHand2.6M: 2D keypoints projected from the capture's 3D joints (METHOD.md §5).

Files: `<prefix>_data.json` (COCO-like images + annotations with bbox, joint_valid, hand_type)
beside `<prefix>_camera.json` and `<prefix>_joint_3d.json`. Per annotation:
    X_cam = R (X_world - campos)        (mm, per capture and camera)
    u = X / Z * fx + cx,  v = Y / Z * fy + cy
Joints 0-20 are the right hand and 21-41 the left (wrist last), the `interhand` skeleton's order.
One instance per annotation, with the annotation's box:
- "right": left-hand joints v = 0; "left": right-hand joints v = 0;
- "interacting": one instance holding both hands (the box covers both), so a 42-keypoint head
  sees the two hands together as the dataset annotates them.
A joint is labelled (v = 2) when joint_valid is set in both the data and the joint_3d file
(int there, bool here) and it lies in front of the camera (Z > 0).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.data.readers.common import (
    InvalidRecord,
    ReadReport,
    RecordIssues,
    TableBuilder,
    box_area,
    expect_coco_layout,
    load_json,
    parse_box,
    parse_int,
    require,
)
from posebh_cli.data.readers.images import check_images as run_image_checks
from posebh_cli.data.readers.registry import register_reader
from posebh_cli.errors import PosebhError
from posebh_cli.skeletons import get_skeleton

JOINTS_PER_HAND = 21
HAND_TYPES = ("right", "left", "interacting")


def sibling_files(data_path: Path) -> tuple[Path, Path]:
    """`X_data.json` -> (`X_camera.json`, `X_joint_3d.json`)."""
    name = data_path.name
    if not name.endswith("_data.json"):
        raise PosebhError(f"{data_path}: an InterHand2.6M data file must be named "
                          "'<prefix>_data.json' (its camera and joint_3d files sit beside it)")
    prefix = name[: -len("_data.json")]
    return (data_path.with_name(f"{prefix}_camera.json"),
            data_path.with_name(f"{prefix}_joint_3d.json"))


def project_points(world: np.ndarray, rotation: np.ndarray, position: np.ndarray,
                   focal: np.ndarray, principal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """world: (J, 3) mm -> (uv (J, 2) pixels, depth (J,) mm in the camera frame)."""
    camera = (world - position[None, :]) @ rotation.T  # (J, 3): R (X - C) per row
    depth = camera[:, 2]
    safe = np.where(np.abs(depth) > 1e-9, depth, 1e-9)
    uv = camera[:, :2] / safe[:, None] * focal[None, :] + principal[None, :]
    return uv, depth


def _camera(cameras: dict, capture: str, camera: str) -> tuple[np.ndarray, ...]:
    try:
        params = cameras[capture]
        values = (params["camrot"][camera], params["campos"][camera], params["focal"][camera],
                  params["princpt"][camera])
    except (KeyError, TypeError):
        raise InvalidRecord(f"no camera '{camera}' of capture '{capture}' in the camera "
                            "file") from None
    rotation, position, focal, principal = (np.asarray(v, dtype=np.float64) for v in values)
    if rotation.shape != (3, 3) or position.shape != (3,) or focal.shape != (2,) \
            or principal.shape != (2,):
        raise InvalidRecord(f"camera '{camera}' of capture '{capture}': expected camrot 3x3, "
                            "campos [3], focal [2], princpt [2]")
    return rotation, position, focal, principal


def _joints(joints_3d: dict, capture: str, frame: str, num_keypoints: int):
    try:
        entry = joints_3d[capture][frame]
        world = np.asarray(entry["world_coord"], dtype=np.float64)
        valid = np.asarray(entry.get("joint_valid", np.ones(num_keypoints)), dtype=np.float64)
    except (KeyError, TypeError):
        raise InvalidRecord(f"no joints for capture '{capture}' frame '{frame}' in the joint_3d "
                            "file") from None
    if world.shape != (num_keypoints, 3) or valid.size != num_keypoints:
        raise InvalidRecord(f"joint_3d capture '{capture}' frame '{frame}': expected "
                            f"{num_keypoints} joints, got world_coord {list(world.shape)}")
    return world, valid.reshape(-1) > 0


def _interhand_instance(image: dict, annotation: dict, cameras: dict, joints_3d: dict,
                        num_keypoints: int) -> tuple[np.ndarray, np.ndarray, str]:
    capture = str(require(image, "capture"))
    camera = str(require(image, "camera"))
    frame = str(require(image, "frame_idx"))
    box = parse_box(require(annotation, "bbox"))
    data_valid = np.asarray(require(annotation, "joint_valid"), dtype=np.float64).reshape(-1)
    if data_valid.size != num_keypoints:
        raise InvalidRecord(f"field 'joint_valid': expected {num_keypoints} flags, got "
                            f"{data_valid.size}")
    hand_type = require(annotation, "hand_type")
    if hand_type not in HAND_TYPES:
        raise InvalidRecord(f"field 'hand_type': expected one of {', '.join(HAND_TYPES)}, got "
                            f"{hand_type!r}")
    world, world_valid = _joints(joints_3d, capture, frame, num_keypoints)
    uv, depth = project_points(world, *_camera(cameras, capture, camera))
    labelled = (data_valid > 0) & world_valid & (depth > 0)
    if hand_type == "right":
        labelled[JOINTS_PER_HAND:] = False
    elif hand_type == "left":
        labelled[:JOINTS_PER_HAND] = False
    keypoints = np.zeros((num_keypoints, 3), dtype=np.float32)
    keypoints[labelled, :2] = uv[labelled]
    keypoints[labelled, 2] = 2.0
    return box, keypoints, hand_type


@register_reader("interhand", "interhand")
def read_interhand(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
                   check_images=False, progress=None):
    """Read InterHand2.6M (data + camera + joint_3d) into 42-keypoint instances."""
    ann_path, image_root = Path(ann_path), Path(image_root)
    num_keypoints = get_skeleton(skeleton).num_keypoints
    if num_keypoints != 2 * JOINTS_PER_HAND:
        raise PosebhError(f"{ann_path}: InterHand2.6M needs a 42-keypoint skeleton (right hand "
                          f"0-20, left 21-41); '{skeleton}' has {num_keypoints}")
    camera_path, joints_path = sibling_files(ann_path)
    data = load_json(ann_path)
    cameras = load_json(camera_path, "InterHand2.6M camera file")
    joints_3d = load_json(joints_path, "InterHand2.6M joint_3d file")
    for path, value in ((camera_path, cameras), (joints_path, joints_3d)):
        if not isinstance(value, dict):
            raise PosebhError(f"{path}: expected an object keyed by capture id")
    images, annotations = expect_coco_layout(data, ann_path)
    report = ReadReport(ann_file=str(ann_path))
    issues = RecordIssues(ann_path, report, skip_invalid)

    image_records: dict[int, dict[str, Any]] = {}
    for i, image in enumerate(images):
        try:
            image_id = parse_int(require(image, "id"), "id")
            if not isinstance(require(image, "file_name"), str):
                raise InvalidRecord("field 'file_name': expected a path")
        except InvalidRecord as bad:
            issues.reject(f"images[{i}]", str(bad), image=True)
            continue
        image_records[image_id] = image
    ids = list(image_records)
    checks = run_image_checks([os.path.join(image_root, image_records[i]["file_name"])
                               for i in ids], decode=check_images, progress=progress)
    builder = TableBuilder(num_keypoints)
    row_of: dict[int, int] = {}
    for image_id, (problem, size) in zip(ids, checks, strict=True):
        image = image_records[image_id]
        if problem is not None:
            issues.reject(f"image id {image_id}", problem, image=True)
            continue
        height, width = size if size != (0, 0) else (int(image.get("height", 0)),
                                                     int(image.get("width", 0)))
        row_of[image_id] = builder.add_image(image["file_name"], image_id, height, width)

    for i, annotation in enumerate(annotations):
        try:
            image_id = parse_int(require(annotation, "image_id"), "image_id")
            if image_id not in row_of:
                raise InvalidRecord(f"field 'image_id': {image_id} has no valid image")
            box, keypoints, hand_type = _interhand_instance(
                image_records[image_id], annotation, cameras, joints_3d, num_keypoints)
            instance_id = parse_int(annotation.get("id", i), "id")
        except InvalidRecord as bad:
            issues.reject(f"annotations[{i}] (id {annotation.get('id', '?')})"
                          if isinstance(annotation, dict) else f"annotations[{i}]", str(bad))
            continue
        builder.add_instance(row_of[image_id], box, keypoints, area=box_area(box),
                             instance_id=instance_id, category_id=1, iscrowd=False,
                             hand_types=hand_type)
    meta = {"format": "interhand", "ann_file": str(ann_path.resolve()),
            "camera_file": str(camera_path.resolve()),
            "joint_3d_file": str(joints_path.resolve())}
    table = builder.build(dataset=dataset_name, skeleton=skeleton, image_root=str(image_root),
                          meta=meta)
    table.extras.setdefault("iscrowd", np.zeros(len(table), dtype=bool))
    table.extras.setdefault("hand_types", np.zeros(len(table), dtype="<U11"))
    report.images, report.instances = table.num_images, len(table)
    return table, report
