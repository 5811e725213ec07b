"""The unified instance record every reader produces: a column store per dataset split.

One `InstanceTable` holds all annotated (or detected) instances of one split as numpy columns, so
a 150k-instance split loads from its prepared `.npz` in well under a second and transforms index
it without per-record Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class InstanceTable:
    """All instances of one dataset split.

    Image columns (I images):
        image_files: (I,) str, paths relative to `image_root` (POSIX separators)
        image_ids: (I,) int64, the source annotation's image ids
        image_sizes: (I, 2) int32, (height, width); 0 when unknown
    Instance columns (N instances):
        image_index: (N,) int64, row into the image columns
        boxes: (N, 4) float32, xywh in image pixels, w > 0 and h > 0
        keypoints: (N, K, 3) float32, (x, y, visibility) in image pixels; v = 0 unlabelled,
            1 labelled but occluded, 2 visible (COCO convention); zeros for detection boxes
        areas: (N,) float32, instance area for OKS (segmentation area or 0.53 x box area)
        instance_ids: (N,) int64, annotation ids (or running ids for detections)
        category_ids: (N,) int64, source category (species for AP-10K / APT-36K)
        scores: (N,) float32, box score (1 for ground-truth boxes)
    extras: per-instance extra columns by name, each with N rows (e.g. "head_boxes" (N, 4) for
        MPII PCKh, "video_ids" (N,) for APT-36K, "hand_types" (N,) for InterHand2.6M).
    """

    dataset: str
    skeleton: str
    image_root: str
    image_files: np.ndarray
    image_ids: np.ndarray
    image_sizes: np.ndarray
    image_index: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray
    instance_ids: np.ndarray
    category_ids: np.ndarray
    scores: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def num_images(self) -> int:
        return int(self.image_files.shape[0])

    def image_path(self, instance: int) -> str:
        """Absolute-or-root-relative path of the image holding instance `instance`."""
        import os

        return os.path.join(self.image_root, str(self.image_files[self.image_index[instance]]))

    def select(self, rows: np.ndarray) -> InstanceTable:
        """A table with only the instances `rows` (image columns unchanged)."""
        import dataclasses

        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(
            self, image_index=self.image_index[rows], boxes=self.boxes[rows],
            keypoints=self.keypoints[rows], areas=self.areas[rows],
            instance_ids=self.instance_ids[rows], category_ids=self.category_ids[rows],
            scores=self.scores[rows], extras={k: v[rows] for k, v in self.extras.items()})

    def labelled_rows(self) -> np.ndarray:
        """Instances a top-down model learns from: >= 1 labelled keypoint and not crowd."""
        labelled = (self.keypoints[:, :, 2] > 0).any(axis=1)
        crowd = self.extras.get("iscrowd")
        if crowd is not None:
            labelled &= np.asarray(crowd) == 0
        return np.flatnonzero(labelled)
