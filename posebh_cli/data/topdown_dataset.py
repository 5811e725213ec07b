"""Top-down pose datasets over InstanceTables, their mixture, and the batch collate.

A sample key is an int `i` or a tuple `(i, seed)`. With a tuple the augmentation generator is
seeded by `seed` (MixtureSampler(yield_seeds=True) derives it from (base seed, epoch, stream
position), so a resumed run replays identical crops). With an int the seed is derived from
(base_seed, epoch, i); call `set_epoch` each epoch.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from posebh_cli.data.image_cache import ImageCache, read_image_for_warp
from posebh_cli.data.records import InstanceTable
from posebh_cli.data.sampler import mix_seed
from posebh_cli.data.transforms import TopDownTransform

SampleKey = int | tuple[int, int]


def _split_key(key: SampleKey) -> tuple[int, int | None]:
    if isinstance(key, tuple):
        index, seed = key
        return int(index), int(seed)
    return int(key), None


class TopDownDataset(Dataset):
    """One dataset split as top-down samples.

    Args:
        table: the split's instances.
        transform: the TopDownTransform (its config picks UDP/MSRA, sizes, augmentation).
        dataset_index: this dataset's position in the mixture (routes the MoE expert and head).
        flip_index: (K,) mirror permutation of the skeleton; None disables flipping.
        upper_body: upper-body keypoint ids; None disables half-body (e.g. MPII, METHOD.md §4).
        image_cache: shared decoded-image cache; None decodes every time.
        train: augment (True) or centre crops (False).
        base_seed: seed for int keys.
    """

    def __init__(
        self,
        table: InstanceTable,
        transform: TopDownTransform,
        dataset_index: int,
        flip_index: np.ndarray | Sequence[int] | None,
        upper_body: np.ndarray | Sequence[int] | None,
        image_cache: ImageCache | None = None,
        train: bool = True,
        base_seed: int = 0,
    ) -> None:
        self.table = table
        self.transform = transform
        self.dataset_index = int(dataset_index)
        k = table.num_keypoints
        self.flip_index = None if flip_index is None else np.asarray(flip_index, dtype=np.int64)
        if self.flip_index is not None and sorted(self.flip_index.tolist()) != list(range(k)):
            raise ValueError(f"flip_index must be a permutation of range({k}) for {table.dataset}")
        self.upper_body = None if upper_body is None else np.asarray(upper_body, dtype=np.int64)
        self.image_cache = image_cache
        self.train = train
        self.base_seed = int(base_seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.table)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def load_image(self, instance: int) -> np.ndarray:
        """(H, W, 4) uint8 BGRA image of an instance (PosebhError naming a bad file)."""
        path = self.table.image_path(instance)
        if self.image_cache is not None:
            return self.image_cache.get(path)
        return read_image_for_warp(path)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        """Sample dict: the transform's keys plus `dataset_idx` (int) and `index` (instance row).
        See TopDownTransform.__call__ for shapes."""
        index, seed = _split_key(key)
        if not 0 <= index < len(self):
            raise IndexError(f"instance {index} out of range for {len(self)} instances")
        if seed is None:
            seed = int(mix_seed(self.base_seed, self.epoch, index))
        rng = np.random.default_rng(seed) if self.train else None
        sample = self.transform(
            self.load_image(index),
            self.table.boxes[index],
            self.table.keypoints[index],
            flip_index=self.flip_index,
            upper_body=self.upper_body,
            rng=rng,
            train=self.train,
        )
        sample["dataset_idx"] = self.dataset_index
        sample["index"] = index
        return sample


class MixedPoseDataset(Dataset):
    """Concatenation of datasets, indexed like ConcatDataset, forwarding (index, seed) keys."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        if not datasets:
            raise ValueError("MixedPoseDataset needs at least one dataset")
        self.datasets = list(datasets)
        self.sizes = [len(d) for d in self.datasets]
        self.cumulative = np.cumsum(self.sizes).tolist()

    def __len__(self) -> int:
        return int(self.cumulative[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (dataset position, local index)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        d = bisect.bisect_right(self.cumulative, index)
        start = self.cumulative[d - 1] if d else 0
        return d, index - start

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def __getitem__(self, key: SampleKey) -> dict[str, Any]:
        index, seed = _split_key(key)
        d, local = self.locate(index)
        return self.datasets[d][local if seed is None else (local, seed)]


def collate_pose_batch(samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack samples whose skeletons may differ in size, ordered by dataset (stable).

    Heatmap-like fields are zero-padded to the batch's largest K (padded weights are 0, so a loss
    weighted by `weights` ignores them); each head slices its own first K_d channels.
    Returns:
        image: (B, 3, H, W) uint8 (or float32 if normalised in the worker)
        heatmaps: (B, K_max, h, w) float32; weights: (B, K_max) float32
        keypoints: (B, K_max, 3) float32 (x, y in input pixels, visible 0/1)
        num_keypoints: (B,) int64 true K of each sample
        dataset_idx: (B,) int64; index: (B,) int64 instance row in its dataset
        center: (B, 2), scale: (B, 2), rotation: (B,) float32; flipped: (B,) bool
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    # Dataset order (stable): each dataset's samples form one run of rows, so the MoE experts
    # and the heads work on row slices instead of gathers (models/moe.py).
    samples = sorted(samples, key=lambda s: int(s["dataset_idx"]))
    num_kpts = [int(s["heatmaps"].shape[0]) for s in samples]
    k_max = max(num_kpts)
    b = len(samples)
    h, w = samples[0]["heatmaps"].shape[1:]
    heatmaps = torch.zeros((b, k_max, h, w), dtype=torch.float32)
    weights = torch.zeros((b, k_max), dtype=torch.float32)
    keypoints = torch.zeros((b, k_max, 3), dtype=torch.float32)
    for i, (sample, k) in enumerate(zip(samples, num_kpts, strict=True)):
        heatmaps[i, :k] = sample["heatmaps"]
        weights[i, :k] = sample["weights"]
        keypoints[i, :k] = sample["keypoints"]
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "heatmaps": heatmaps,
        "weights": weights,
        "keypoints": keypoints,
        "num_keypoints": torch.tensor(num_kpts, dtype=torch.int64),
        "dataset_idx": torch.tensor([int(s["dataset_idx"]) for s in samples], dtype=torch.int64),
        "index": torch.tensor([int(s["index"]) for s in samples], dtype=torch.int64),
        "center": torch.stack([s["center"] for s in samples]),
        "scale": torch.stack([s["scale"] for s in samples]),
        "rotation": torch.tensor([float(s["rotation"]) for s in samples], dtype=torch.float32),
        "flipped": torch.tensor([bool(s["flipped"]) for s in samples], dtype=torch.bool),
    }
