"""The global keypoint-type table: (dataset, keypoint) -> global type id.

Every dataset of a recipe contributes its skeleton's keypoints as a contiguous block, in recipe
order (METHOD.md §1: the reference mixture gives 17 + 14 + 16 + 17 + 17 + 133 = 214 types). This
table is the single source for prototype offsets, head sizes and flip pairs; using global ids
everywhere is what fixes the reference's local/global mix-up (METHOD.md §8.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebh_cli.errors import PosebhError
from posebh_cli.skeletons.registry import get_skeleton, unknown_name_error
from posebh_cli.skeletons.skeleton import Skeleton


@dataclass(frozen=True)
class KeypointTypeTable:
    """Blocks of global keypoint ids, one per dataset, in order.

    datasets: (D,) dataset names; skeletons: (D,) their skeletons.
    offsets: (D + 1,) cumulative block starts; the last entry is J, the number of types.
    """

    datasets: tuple[str, ...]
    skeletons: tuple[Skeleton, ...]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> KeypointTypeTable:
        """Build from (dataset name, skeleton name) pairs, in recipe order."""
        names = [d for d, _ in pairs]
        repeated = sorted({d for d in names if names.count(d) > 1})
        if repeated:
            raise PosebhError(f"dataset name '{repeated[0]}' appears twice; names must be unique")
        return cls(tuple(names), tuple(get_skeleton(s) for _, s in pairs))

    @property
    def offsets(self) -> np.ndarray:
        sizes = [s.num_keypoints for s in self.skeletons]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def num_types(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_datasets(self) -> int:
        return len(self.datasets)

    def dataset_index(self, dataset: str) -> int:
        try:
            return self.datasets.index(dataset)
        except ValueError:
            raise unknown_name_error("dataset", dataset, list(self.datasets)) from None

    def skeleton(self, dataset: str) -> Skeleton:
        return self.skeletons[self.dataset_index(dataset)]

    def offset(self, dataset: str) -> int:
        return int(self.offsets[self.dataset_index(dataset)])

    def num_keypoints(self, dataset: str) -> int:
        return self.skeleton(dataset).num_keypoints

    def global_ids(self, dataset: str) -> np.ndarray:
        """(K_d,) global type ids of `dataset`'s keypoints, in skeleton order."""
        start = self.offset(dataset)
        return np.arange(start, start + self.num_keypoints(dataset), dtype=np.int64)

    def dataset_of_type(self) -> np.ndarray:
        """(J,) the dataset index owning each global type."""
        sizes = [s.num_keypoints for s in self.skeletons]
        return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)

    def type_names(self) -> list[str]:
        """(J,) 'dataset/keypoint' labels for plots and reports."""
        return [f"{d}/{k}" for d, s in zip(self.datasets, self.skeletons) for k in s.keypoints]

    def to_dict(self) -> dict:
        return {
            "datasets": list(self.datasets),
            "skeletons": [s.name for s in self.skeletons],
            "offsets": self.offsets.tolist(),
            "num_types": self.num_types,
        }
