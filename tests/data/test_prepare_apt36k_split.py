"""APT-36K video-level 7:1:2 split per species (METHOD.md §5, §8.5)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from posebh_cli.data.prepare import prepare_dataset
from posebh_cli.data.prepared_index import load_index
from posebh_cli.data.splits import (
    assign_videos,
    relative_frame_path,
    split_apt36k,
    split_counts,
    write_apt36k_split,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _raw(videos_per_species=(40, 20, 10), frames=3) -> dict:
    """A raw-layout file: species s has videos_per_species[s] clips of `frames` frames."""
    images, annotations, video = [], [], 0
    for species, count in enumerate(videos_per_species, start=1):
        for _ in range(count):
            video += 1
            for frame in range(frames):
                image_id = len(images) + 1
                images.append({"id": image_id, "video_id": video, "width": 10, "height": 10,
                               "file_name": f"D:\\AP-36k\\{species}sp\\v{video}\\frame{frame}.jpg"})
                annotations.append({"id": image_id, "image_id": image_id, "video_id": video,
                                    "track_id": 1, "category_id": species, "is_crowd": 0,
                                    "bbox": [1, 1, 5, 5], "keypoints": [0] * 51})
    return {"info": {}, "license": [], "categories": [{"id": s, "name": f"sp{s}"} for s in
                                                       range(1, 4)],
            "images": images, "annotations": annotations}


def test_split_counts_largest_remainder():
    assert split_counts(10) == [7, 1, 2]
    assert split_counts(20) == [14, 2, 4]
    assert split_counts(3) == [2, 0, 1]
    assert split_counts(1) == [1, 0, 0]
    assert all(sum(split_counts(n)) == n for n in range(50))


def test_no_video_in_two_splits_and_proportions_per_species():
    outputs = split_apt36k(_raw(), "raw.json", seed=3)
    videos = {name: {a["video_id"] for a in out["annotations"]} for name, out in outputs.items()}
    assert not videos["train"] & videos["val"] and not videos["train"] & videos["test"]
    assert not videos["val"] & videos["test"]
    for name, expected in zip(("train", "val", "test"), ([28, 14, 7], [4, 2, 1], [8, 4, 2]),
                              strict=True):
        per_species = Counter()
        for a in outputs[name]["annotations"]:
            per_species[a["category_id"]] += 1
        assert [per_species[s] // 3 for s in (1, 2, 3)] == expected
    # Every frame of a video goes with it; images and annotations agree.
    for out in outputs.values():
        image_ids = {i["id"] for i in out["images"]}
        assert {a["image_id"] for a in out["annotations"]} == image_ids


def test_same_seed_same_split_other_seed_differs_and_order_does_not_matter():
    raw = _raw()
    first = split_apt36k(raw, "r", seed=0)
    again = split_apt36k(raw, "r", seed=0)
    assert first == again
    shuffled = dict(raw, images=raw["images"][::-1], annotations=raw["annotations"][::-1])
    reordered = split_apt36k(shuffled, "r", seed=0)
    for name in first:
        assert sorted(i["id"] for i in first[name]["images"]) == \
            sorted(i["id"] for i in reordered[name]["images"])
    other = split_apt36k(raw, "r", seed=1)
    assert {i["id"] for i in other["val"]["images"]} != {i["id"] for i in first["val"]["images"]}


def test_layout_conversion():
    outputs = split_apt36k(_raw((10,), frames=1), "r", seed=0)
    annotation = outputs["train"]["annotations"][0]
    assert "is_crowd" not in annotation and annotation["iscrowd"] == 0
    assert outputs["train"]["images"][0]["file_name"].startswith("1sp/v")
    assert relative_frame_path(r"D:\Animal_pose\AP-36k-patr1\29wolf\v3c2\frame7.jpg") == \
        "29wolf/v3c2/frame7.jpg"
    assert "license" in outputs["test"]


def test_assign_videos_keeps_species_streams_independent():
    base = assign_videos({v: 1 for v in range(20)}, seed=5)
    more = assign_videos({**{v: 1 for v in range(20)}, **{v: 2 for v in range(20, 30)}}, seed=5)
    assert all(more[v] == base[v] for v in base)


def test_write_split_files(tmp_path):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(_raw()))
    paths = write_apt36k_split(raw, tmp_path / "out", seed=0)
    assert sorted(p.name for p in paths.values()) == ["apt36k_test.json", "apt36k_train.json",
                                                      "apt36k_val.json"]
    total = sum(len(json.loads(p.read_text())["annotations"]) for p in paths.values())
    assert total == 70 * 3


def test_prepare_raw_mock_end_to_end(tmp_path):
    root = DATA / "apt36k_mock"
    if not root.exists():
        pytest.skip("sample data not found")
    summaries = prepare_dataset("apt36k_raw", root, ann="apt36k_raw_layout_MOCK.json",
                                out_dir=tmp_path, check_images=True)
    assert [s.split for s in summaries] == ["train", "val", "test"]
    # One video per species: each goes to train (largest remainder of 7:1:2 for n = 1).
    assert [s.instances for s in summaries] == [2, 0, 0]
    train = load_index(tmp_path / "apt36k_train.npz")
    assert train.meta["raw_ann_file"].endswith("apt36k_raw_layout_MOCK.json")
    written = json.loads((tmp_path / "apt36k_train.json").read_text())
    mock = json.loads((root / "apt36k_posebh_layout_MOCK.json").read_text())
    assert sorted(i["file_name"] for i in written["images"]) == \
        sorted(i["file_name"] for i in mock["images"])
