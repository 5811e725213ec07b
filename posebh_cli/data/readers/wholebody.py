"""COCO-WholeBody: 133 keypoints assembled from the body, foot, face and hand arrays.

Order (the coco_wholebody skeleton): body 0-16 (`keypoints`), feet 17-22 (`foot_kpts`), face
23-90 (`face_kpts`), left hand 91-111 (`lefthand_kpts`), right hand 112-132 (`righthand_kpts`).
A file that already holds all 133 in `keypoints` (mmpose's partition-metric fixture) is read as is.
"""

from __future__ import annotations

import numpy as np

from posebh_cli.data.readers.coco_style import read_coco_style
from posebh_cli.data.readers.common import InvalidRecord, parse_keypoints, require
from posebh_cli.data.readers.registry import register_reader

PARTS = (("keypoints", 17), ("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21),
         ("righthand_kpts", 21))


def wholebody_keypoints(annotation: dict, num_keypoints: int, skeleton: str) -> np.ndarray:
    """(133, 3) from the part arrays (or a single 133-keypoint `keypoints` array)."""
    body = require(annotation, "keypoints")
    if isinstance(body, list) and len(body) in (num_keypoints, num_keypoints * 3):
        return parse_keypoints(body, num_keypoints, skeleton)
    expected = sum(count for _, count in PARTS)
    if num_keypoints != expected:
        raise InvalidRecord(f"skeleton '{skeleton}' has {num_keypoints} keypoints; the "
                            f"COCO-WholeBody part arrays make {expected}")
    parts = [parse_keypoints(require(annotation, key), count, f"{skeleton} {key}", key)
             for key, count in PARTS]
    return np.concatenate(parts, axis=0)


@register_reader("coco_wholebody", "coco_wholebody")
def read_coco_wholebody(ann_path, image_root, skeleton, *, dataset_name, skip_invalid=False,
                        check_images=False, progress=None):
    """Read a COCO-WholeBody v1.0 file (COCO layout plus the part arrays)."""
    return read_coco_style(ann_path, image_root, skeleton, dataset_name=dataset_name,
                           skip_invalid=skip_invalid, check_images=check_images,
                           progress=progress, keypoints_of=wholebody_keypoints,
                           format_name="coco_wholebody")
