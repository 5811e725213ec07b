"""COCO-style readers on the real samples (values checked against the JSON) and on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.data.readers import DEFAULT_SKELETONS, READERS, get_reader, read_detections
from posebh_cli.data.readers.coco_style import relative_posix_path
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import DATASET_FORMATS

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"

SAMPLES = [  # (format, annotation file, image folder, K)
    ("coco", "coco/test_coco.json", "coco", 17),
    ("aic", "aic/test_aic.json", "aic", 14),
    ("ap10k", "ap10k/test_ap10k.json", "ap10k", 17),
    ("ochuman", "ochuman/test_ochuman.json", "ochuman", 17),
    ("onehand10k", "onehand10k/test_onehand10k.json", "onehand10k", 21),
    ("apt36k", "apt36k_mock/apt36k_posebh_layout_MOCK.json", "apt36k_mock/images", 17),
    ("apt36k_raw", "apt36k_mock/apt36k_raw_layout_MOCK.json", "apt36k_mock/images", 17),
]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"sample data not found: {path}")
    return path


def _read(fmt, ann, images, **kwargs):
    return get_reader(fmt)(ann, images, DEFAULT_SKELETONS[fmt] or "coco", dataset_name=fmt,
                           **kwargs)


def test_registry_matches_recipe_formats_and_rejects_unknown_names():
    assert sorted(READERS) == sorted(DATASET_FORMATS)
    with pytest.raises(PosebhError, match="did you mean 'coco'"):
        get_reader("cocoo")


@pytest.mark.parametrize("fmt,ann,images,k", SAMPLES)
def test_sample_matches_json(fmt, ann, images, k):
    ann_path = _need(DATA / ann)
    table, report = _read(fmt, ann_path, DATA / images, check_images=True)
    data = json.loads(ann_path.read_text())
    assert report.instances == len(table) == len(data["annotations"])
    assert table.num_images == len(data["images"]) and report.invalid_instances == 0
    assert table.keypoints.shape == (len(table), k, 3)
    for row, annotation in enumerate(data["annotations"]):
        assert table.instance_ids[row] == annotation["id"]
        np.testing.assert_allclose(table.boxes[row], annotation["bbox"], rtol=1e-6)
        np.testing.assert_allclose(table.keypoints[row].reshape(-1), annotation["keypoints"],
                                   rtol=1e-6)
        image_row = table.image_index[row]
        assert table.image_ids[image_row] == annotation["image_id"]
        image = next(i for i in data["images"] if i["id"] == annotation["image_id"])
        # Decoded sizes agree with the JSON's width/height.
        assert table.image_sizes[image_row].tolist() == [image["height"], image["width"]]
        assert Path(table.image_path(row)).is_file()
    assert not table.extras["iscrowd"].any()


def test_apt36k_layouts_agree_and_keep_video_ids():
    raw, _ = _read("apt36k_raw", _need(DATA / "apt36k_mock/apt36k_raw_layout_MOCK.json"),
                   DATA / "apt36k_mock/images")
    split, _ = _read("apt36k", DATA / "apt36k_mock/apt36k_posebh_layout_MOCK.json",
                     DATA / "apt36k_mock/images")
    assert raw.image_files.tolist() == split.image_files.tolist()
    assert raw.image_files.tolist()[0].count("/") == 2  # last 3 parts of the Windows path
    np.testing.assert_array_equal(raw.keypoints, split.keypoints)
    assert sorted(raw.extras["video_ids"].tolist()) == [1, 2]
    assert raw.extras["track_ids"].tolist() == [1, 1]
    assert sorted(raw.category_ids.tolist()) == [1, 26]


def test_relative_posix_path():
    assert relative_posix_path(r"D:\Animal_pose\AP-36k-patr1\29wolf\v3c2\frame7.jpg", 3) \
        == "29wolf/v3c2/frame7.jpg"
    assert relative_posix_path("a/b.jpg", None) == "a/b.jpg"


def test_detections_threshold_and_values():
    gt, _ = _read("coco", _need(DATA / "coco/test_coco.json"), DATA / "coco")
    det_path = DATA / "coco/test_coco_det_AP_H_56.json"
    detections = json.loads(det_path.read_text())
    table = read_detections(det_path, gt, score_threshold=0.5)
    kept = [d for d in detections if d["score"] >= 0.5]
    assert len(table) == len(kept) and len(kept) < len(detections)
    np.testing.assert_allclose(table.boxes, [d["bbox"] for d in kept], rtol=1e-6)
    np.testing.assert_allclose(table.scores, [d["score"] for d in kept], rtol=1e-6)
    assert table.image_ids[table.image_index].tolist() == [d["image_id"] for d in kept]
    assert table.keypoints.shape == (len(kept), 17, 3) and not table.keypoints.any()
    assert len(read_detections(det_path, gt, 0.0)) == len(detections)


# ---- bad input: a tiny COCO file with one real image, edited per case -------------------

def _tiny(tmp_path: Path, edit=None) -> tuple[Path, Path]:
    image = _need(DATA / "coco/000000000785.jpg")
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    shutil.copy(image, images / "a.jpg")
    annotation = {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": False,
                  "bbox": [10, 20, 30.5, 40], "keypoints": [[1, 2, 2]] * 17}
    data = {"images": [{"id": 1, "file_name": "a.jpg", "height": 425, "width": 640}],
            "annotations": [annotation, dict(annotation, id=8)]}
    if edit is not None:
        edit(data)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return ann, images


def test_tiny_file_reads_nested_keypoints_and_bool_iscrowd(tmp_path):
    ann, images = _tiny(tmp_path, lambda d: d["annotations"][1].update(iscrowd=True))
    table, _ = _read("coco", ann, images)
    assert table.keypoints[0, 0].tolist() == [1, 2, 2]
    assert table.extras["iscrowd"].tolist() == [False, True]
    assert table.areas[0] == pytest.approx(0.53 * 30.5 * 40)


def test_truncated_json(tmp_path):
    ann, images = _tiny(tmp_path)
    ann.write_text(ann.read_text()[:50])
    with pytest.raises(PosebhError, match=r"ann\.json: not valid JSON at line 1"):
        _read("coco", ann, images)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(PosebhError, match="nope.json: annotation file not found"):
        _read("coco", tmp_path / "nope.json", tmp_path)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["annotations"][1].update(keypoints=[0] * 42),
     r"annotations\[1\] \(id 8\): field 'keypoints': skeleton 'coco' has 17 keypoints, "
     r"the record has 14"),
    (lambda d: d["annotations"][1].update(bbox=[1, 2, 0, 5]),
     r"annotations\[1\] \(id 8\): field 'bbox': w and h must be > 0"),
    (lambda d: d["annotations"][1].pop("bbox"),
     r"annotations\[1\] \(id 8\): missing key 'bbox'"),
    (lambda d: d["annotations"][1].update(image_id=5),
     r"field 'image_id': 5: no image with this id"),
])
def test_bad_record_names_file_record_and_field(tmp_path, edit, message):
    ann, images = _tiny(tmp_path, edit)
    with pytest.raises(PosebhError, match=message) as error:
        _read("coco", ann, images)
    assert str(ann) in str(error.value) and "\n" not in str(error.value)
    table, report = _read("coco", ann, images, skip_invalid=True)
    assert len(table) == 1 and table.instance_ids.tolist() == [7]
    assert report.invalid_instances == 1 and len(report.problems) == 1


def test_missing_image(tmp_path):
    ann, images = _tiny(tmp_path)
    (images / "a.jpg").unlink()
    with pytest.raises(PosebhError, match="image file not found: .*a.jpg"):
        _read("coco", ann, images)
    table, report = _read("coco", ann, images, skip_invalid=True)
    assert (len(table), table.num_images) == (0, 0)
    assert report.invalid_images == 1 and report.invalid_instances == 2


def test_corrupt_image_only_caught_when_decoding(tmp_path):
    ann, images = _tiny(tmp_path)
    (images / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert len(_read("coco", ann, images)[0]) == 2  # existence check only
    with pytest.raises(PosebhError, match="image file is corrupt or not an image: .*a.jpg"):
        _read("coco", ann, images, check_images=True)


def test_palette_png_decodes_to_colour(tmp_path):
    png = _need(DATA / "horse10/0244.png")
    import cv2

    from posebh_cli.data.readers.images import image_problem

    assert png.read_bytes()[25] == 3  # PNG IHDR colour type 3: palette
    problem, size = image_problem(str(png), decode=True)
    assert problem is None and size == cv2.imread(str(png)).shape[:2]
    assert cv2.imread(str(png)).shape[2] == 3
