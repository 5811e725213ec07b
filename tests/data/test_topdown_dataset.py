from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from posebh_cli.codecs import decode, heatmap_to_image
from posebh_cli.data.image_cache import ImageCache
from posebh_cli.data.records import InstanceTable
from posebh_cli.data.sampler import MixtureSampler
from posebh_cli.data.topdown_dataset import MixedPoseDataset, TopDownDataset, collate_pose_batch
from posebh_cli.data.transforms import TopDownConfig, TopDownTransform
from posebh_cli.errors import PosebhError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COCO_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])


def _table(root: Path, name: str, k: int, n: int, files: list[str]) -> InstanceTable:
    rng = np.random.default_rng(k)
    boxes = np.tile(np.array([[100.0, 80.0, 120.0, 200.0]], np.float32), (n, 1))
    xy = rng.uniform([110, 90], [210, 270], size=(n, k, 2))
    keypoints = np.concatenate([xy, np.full((n, k, 1), 2.0)], axis=2).astype(np.float32)
    return InstanceTable(
        dataset=name,
        skeleton=name,
        image_root=str(root),
        image_files=np.array(files),
        image_ids=np.arange(len(files), dtype=np.int64),
        image_sizes=np.tile(np.array([[480, 640]], np.int32), (len(files), 1)),
        image_index=np.arange(n, dtype=np.int64) % len(files),
        boxes=boxes,
        keypoints=keypoints,
        areas=np.full(n, 0.53 * 120 * 200, np.float32),
        instance_ids=np.arange(n, dtype=np.int64),
        category_ids=np.ones(n, dtype=np.int64),
        scores=np.ones(n, dtype=np.float32),
    )


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img{i}.jpg"), rng.integers(0, 255, (480, 640, 3), np.uint8))
    return tmp_path


def test_sample_keys_shapes_and_seeded_reproducibility(image_root):
    table = _table(image_root, "coco", 17, 6, ["img0.jpg", "img1.jpg"])
    cache = ImageCache()
    ds = TopDownDataset(table, TopDownTransform(), 2, COCO_FLIP, np.arange(11), cache)
    sample = ds[3]
    assert sample["dataset_idx"] == 2 and sample["index"] == 3
    assert sample["image"].shape == (3, 256, 192) and sample["heatmaps"].shape == (17, 64, 48)
    assert torch.equal(ds[(3, 42)]["image"], ds[(3, 42)]["image"])
    assert torch.equal(ds[3]["heatmaps"], sample["heatmaps"])  # int keys: (base seed, epoch, i)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["image"], sample["image"])
    assert cache.misses == 1 and cache.hits >= 3
    with pytest.raises(IndexError):
        ds[6]


def test_missing_image_names_the_file(image_root):
    table = _table(image_root, "coco", 17, 2, ["img0.jpg", "gone.jpg"])
    ds = TopDownDataset(table, TopDownTransform(), 0, COCO_FLIP, None)
    with pytest.raises(PosebhError, match="gone.jpg"):
        ds[1]


def test_bad_flip_index_is_rejected(image_root):
    table = _table(image_root, "coco", 17, 2, ["img0.jpg"])
    with pytest.raises(ValueError, match="permutation"):
        TopDownDataset(table, TopDownTransform(), 0, np.zeros(17, int), None)


def test_mixed_batch_pads_keypoints_and_loader_runs(image_root):
    body = TopDownDataset(
        _table(image_root, "coco", 17, 5, ["img0.jpg"]),
        TopDownTransform(),
        0,
        COCO_FLIP,
        np.arange(11),
    )
    hand = TopDownDataset(
        _table(image_root, "hand", 21, 3, ["img1.jpg"]),
        TopDownTransform(TopDownConfig(encoding="msra")),
        1,
        np.arange(21),
        None,
    )
    mixed = MixedPoseDataset([body, hand])
    assert len(mixed) == 8 and mixed.locate(5) == (1, 0)
    sampler = MixtureSampler([5, 3], batch_size=4, seed=0, yield_seeds=True)
    loader = DataLoader(mixed, batch_size=4, sampler=sampler, collate_fn=collate_pose_batch)
    batches = list(loader)
    assert len(batches) == 2
    batch = collate_pose_batch([mixed[0], mixed[5]])
    assert batch["image"].shape == (2, 3, 256, 192) and batch["image"].dtype == torch.uint8
    assert batch["heatmaps"].shape == (2, 21, 64, 48)
    assert batch["num_keypoints"].tolist() == [17, 21]
    assert batch["dataset_idx"].tolist() == [0, 1]
    assert (batch["weights"][0, 17:] == 0).all() and (batch["heatmaps"][0, 17:] == 0).all()
    # Samples come out in dataset order, stable within a dataset (the MoE row slices need it).
    reordered = collate_pose_batch([mixed[5], mixed[0], mixed[6], mixed[1]])
    assert reordered["dataset_idx"].tolist() == [0, 0, 1, 1]
    assert reordered["index"].tolist() == [0, 1, 0, 1]
    assert torch.equal(reordered["heatmaps"][2], mixed[5]["heatmaps"])
    for batch_ in batches:
        assert batch_["dataset_idx"].tolist() == sorted(batch_["dataset_idx"].tolist())
    assert torch.equal(batch["heatmaps"][1], mixed[5]["heatmaps"])
    for key, shape in [
        ("center", (2, 2)),
        ("scale", (2, 2)),
        ("rotation", (2,)),
        ("flipped", (2,)),
        ("keypoints", (2, 21, 3)),
        ("index", (2,)),
    ]:
        assert tuple(batch[key].shape) == shape


def test_real_coco_sample_round_trip():
    ann_file = SHARED_DATA / "coco" / "test_coco.json"
    if not ann_file.exists():
        pytest.skip("shared COCO sample data not available")
    coco = json.loads(ann_file.read_text())
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    anns = [a for a in coco["annotations"] if a["num_keypoints"] >= 5]
    image_ids = sorted({a["image_id"] for a in anns})
    n = len(anns)
    table = InstanceTable(
        dataset="coco",
        skeleton="coco",
        image_root=str(ann_file.parent),
        image_files=np.array([files[i] for i in image_ids]),
        image_ids=np.array(image_ids, dtype=np.int64),
        image_sizes=np.zeros((len(image_ids), 2), np.int32),
        image_index=np.array([image_ids.index(a["image_id"]) for a in anns], dtype=np.int64),
        boxes=np.array([a["bbox"] for a in anns], np.float32),
        keypoints=np.array([a["keypoints"] for a in anns], np.float32).reshape(n, 17, 3),
        areas=np.array([a["area"] for a in anns], np.float32),
        instance_ids=np.array([a["id"] for a in anns], dtype=np.int64),
        category_ids=np.ones(n, dtype=np.int64),
        scores=np.ones(n, dtype=np.float32),
    )
    ds = TopDownDataset(table, TopDownTransform(), 0, COCO_FLIP, np.arange(11), train=False)
    batch = collate_pose_batch([ds[i] for i in range(n)])
    coords, _ = decode(batch["heatmaps"], "dark_udp")
    back = heatmap_to_image(coords, batch["center"], batch["scale"], (64, 48), (256, 192), True)
    labelled = table.keypoints[:, :, 2] > 0
    # Error in heatmap pixels (UDP: one heatmap pixel = scale / (w - 1) image pixels).
    hm_pixel = (batch["scale"].numpy() / np.array([47.0, 63.0]))[:, None, :]
    err = ((back.numpy() - table.keypoints[:, :, :2]) / hm_pixel)[labelled]
    # DARK is unbiased where the 13x13 window is whole; a window cut by the border biases it.
    hm_xy = (batch["keypoints"][:, :, :2].numpy() / np.array([191 / 47, 255 / 63]))[labelled]
    whole = ((hm_xy >= 6) & (hm_xy <= np.array([47 - 6, 63 - 6]))).all(axis=1)
    assert whole.sum() >= 100 and (~whole).sum() >= 1
    assert np.abs(err[whole]).max() < 0.01
    assert np.abs(err[~whole]).max() < 0.25
    assert batch["weights"].numpy().astype(bool).tolist() == labelled.tolist()
    assert not batch["flipped"].any() and batch["image"].float().std() > 10
