"""`load_split`: prepared on first use, cached, invalidated when the annotation file changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from posebh_cli.data.build import load_split
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import DatasetConfig, SplitConfig

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def coco_root(tmp_path) -> Path:
    if not (DATA / "coco").exists():
        pytest.skip("sample data not found")
    (tmp_path / "annotations").mkdir()
    shutil.copy(DATA / "coco/test_coco.json", tmp_path / "annotations/val.json")
    shutil.copy(DATA / "coco/test_coco_det_AP_H_56.json", tmp_path / "det.json")
    shutil.copytree(DATA / "coco", tmp_path / "images",
                    ignore=shutil.ignore_patterns("*.json"))
    return tmp_path


def _config(root: Path, boxes: str = "gt", threshold: float = 0.0) -> DatasetConfig:
    return DatasetConfig(name="coco", skeleton="coco", root=str(root),
                         val=SplitConfig(ann="annotations/val.json", images="images",
                                         boxes=boxes, det_score_threshold=threshold))


def test_prepares_then_reuses_then_invalidates(coco_root):
    cache = coco_root / ".posebh" / "coco_val.npz"
    table = load_split(_config(coco_root), "val")
    assert len(table) == 14 and cache.is_file()
    stamp = cache.stat().st_mtime_ns
    assert len(load_split(_config(coco_root), "val")) == 14
    assert cache.stat().st_mtime_ns == stamp  # reused, not rewritten
    ann = coco_root / "annotations/val.json"
    data = json.loads(ann.read_text())
    data["annotations"] = data["annotations"][:5]
    ann.write_text(json.dumps(data))
    os.utime(ann, ns=(stamp + 10**9, stamp + 10**9))
    assert len(load_split(_config(coco_root), "val")) == 5


def test_corrupt_cache_is_rebuilt(coco_root):
    load_split(_config(coco_root), "val")
    (coco_root / ".posebh" / "coco_val.npz").write_bytes(b"junk")
    assert len(load_split(_config(coco_root), "val")) == 14


def test_detection_boxes(coco_root):
    table = load_split(_config(coco_root, boxes="det.json", threshold=0.5), "val")
    detections = json.loads((coco_root / "det.json").read_text())
    assert len(table) == sum(d["score"] >= 0.5 for d in detections)
    assert table.meta["det_score_threshold"] == 0.5


def test_missing_split_and_file(coco_root):
    with pytest.raises(PosebhError, match="no 'train' split"):
        load_split(_config(coco_root), "train")
    (coco_root / "annotations/val.json").unlink()
    with pytest.raises(PosebhError, match=r"datasets\.coco\.val\.ann: .*not found"):
        load_split(_config(coco_root), "val")


def test_apt36k_raw_format_splits_on_the_fly(tmp_path):
    root = DATA / "apt36k_mock"
    if not root.exists():
        pytest.skip("sample data not found")
    config = DatasetConfig(name="apt", skeleton="apt36k", format="apt36k_raw", root=str(root),
                           train=SplitConfig(ann="apt36k_raw_layout_MOCK.json",
                                             images="images"))
    table = load_split(config, "train", cache_dir=tmp_path)
    assert len(table) == 2 and (tmp_path / "apt_train.npz").is_file()
    assert len(load_split(config, "train", cache_dir=tmp_path)) == 2
