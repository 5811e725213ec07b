"""The synthetic dataset on disk: layout, COCO validity, determinism, refusal, atomic swap."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from posebh_cli.data.synthetic import generate_synthetic
from posebh_cli.data.synthetic.concepts import FAMILY_SKELETON
from posebh_cli.errors import PosebhError
from posebh_cli.skeletons import get_skeleton

FAMILIES = ("human", "animal", "hand")
SPLITS = ("train", "val")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "ds"
    summary = generate_synthetic(out, images_per_family=6, seed=3)
    assert summary["counts"]["human"]["train"]["images"] == 6
    assert summary["counts"]["hand"]["val"]["images"] == 1
    return out


def _load(root: Path, family: str, split: str) -> dict:
    return json.loads((root / "annotations" / f"{family}_{split}.json").read_text())


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_manifest(tiny: Path):
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["images_per_family"] == 6
    for family in FAMILIES:
        for split in SPLITS:
            doc = _load(tiny, family, split)
            assert manifest["counts"][family][split]["images"] == len(doc["images"])
            assert manifest["counts"][family][split]["instances"] == len(doc["annotations"])
            for image in doc["images"]:
                path = tiny / "images" / family / split / image["file_name"]
                pixels = cv2.imread(str(path))
                assert pixels.shape == (image["height"], image["width"], 3)
    assert (tiny / "correspondence.json").is_file()
    assert not list(tiny.parent.glob(".ds.*")), "staging folder left behind"


@pytest.mark.parametrize("family", FAMILIES)
def test_annotations_are_valid_coco_keypoints(tiny: Path, family: str):
    skeleton = get_skeleton(FAMILY_SKELETON[family])
    k = skeleton.num_keypoints
    for split in SPLITS:
        doc = _load(tiny, family, split)
        (category,) = doc["categories"]
        assert category["keypoints"] == list(skeleton.keypoints)
        assert all(1 <= a <= k and 1 <= b <= k for a, b in category["skeleton"])
        sizes = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
        assert doc["annotations"], "every image holds at least one figure"
        for ann in doc["annotations"]:
            kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            assert kps.shape == (k, 3)
            assert set(np.unique(kps[:, 2])) <= {0, 1, 2}
            assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
            x, y, w, h = ann["bbox"]
            width, height = sizes[ann["image_id"]]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= width + 1e-6 and y + h <= height + 1e-6
            assert ann["area"] == pytest.approx(0.53 * w * h, abs=0.01)
            labelled = kps[kps[:, 2] > 0]
            assert np.all((labelled[:, 0] >= x) & (labelled[:, 0] <= x + w))
            assert np.all((labelled[:, 1] >= y) & (labelled[:, 1] <= y + h))
            assert np.all((labelled[:, 0] >= 0) & (labelled[:, 0] <= width - 1))
            assert np.all((labelled[:, 1] >= 0) & (labelled[:, 1] <= height - 1))
            assert np.all(kps[kps[:, 2] == 0, :2] == 0)  # COCO: unlabelled -> (0, 0, 0)
            assert ann["iscrowd"] == 0 and ann["category_id"] == 1


def test_loads_with_pycocotools(tiny: Path):
    for family in FAMILIES:
        coco = COCO()
        coco.dataset = _load(tiny, family, "train")
        coco.createIndex()
        assert len(coco.getImgIds()) == 6
        assert len(coco.getAnnIds(iscrowd=False)) == len(coco.dataset["annotations"])


def test_same_seed_same_bytes_other_seed_differs(tiny: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate_synthetic(again, images_per_family=6, seed=3, workers=2)  # other worker count
    assert _digest(again) == _digest(tiny)
    other = tmp_path / "other"
    generate_synthetic(other, images_per_family=6, seed=4)
    assert _digest(other)["annotations/human_train.json"] != \
        _digest(tiny)["annotations/human_train.json"]


def test_refuses_non_empty_out_dir_unless_overwrite(tmp_path: Path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PosebhError, match="not empty"):
        generate_synthetic(out, images_per_family=1)
    assert (out / "keep.txt").read_text() == "mine"
    generate_synthetic(out, images_per_family=1, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert (out / "annotations" / "hand_val.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no staging / trash left


def test_empty_existing_out_dir_is_accepted(tmp_path: Path):
    out = tmp_path / "empty"
    out.mkdir()
    generate_synthetic(out, images_per_family=1)
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_rejects_bad_image_count(tmp_path: Path, bad):
    with pytest.raises(PosebhError, match="--images"):
        generate_synthetic(tmp_path / "x", images_per_family=bad)


def test_progress_reaches_total(tmp_path: Path):
    seen: list[tuple[int, int]] = []
    generate_synthetic(tmp_path / "p", images_per_family=2, progress=lambda d, t: seen.append(
        (d, t)))
    assert seen[-1] == (9, 9)  # 3 families x (2 train + 1 val)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
