"""COCO-WholeBody, MPII and InterHand2.6M readers on the real samples, with known answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.data.readers import get_reader
from posebh_cli.data.readers.interhand import project_points
from posebh_cli.data.readers.mpii import mpii_box
from posebh_cli.errors import PosebhError

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"sample data not found: {path}")
    return path


def test_wholebody_concatenates_parts_in_skeleton_order():
    ann = _need(DATA / "coco/test_coco_wholebody.json")
    table, report = get_reader("coco_wholebody")(ann, DATA / "coco", "coco_wholebody",
                                                 dataset_name="wb")
    data = json.loads(ann.read_text())
    assert table.keypoints.shape == (14, 133, 3) and report.instances == 14
    for row, a in enumerate(data["annotations"]):
        expected = np.concatenate([np.reshape(a[key], (-1, 3)) for key in (
            "keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")])
        np.testing.assert_allclose(table.keypoints[row], expected, rtol=1e-6)
    # 112 = right-hand root (skeleton order), the first `righthand_kpts` triple.
    np.testing.assert_allclose(table.keypoints[0, 112],
                               data["annotations"][0]["righthand_kpts"][:3], rtol=1e-6)


def test_wholebody_single_array_layout_with_float_scores():
    ann = _need(DATA / "coco/test_keypoint_partition_metric.json")
    table, _ = get_reader("coco_wholebody")(ann, DATA / "coco", "coco_wholebody",
                                            dataset_name="wb")
    data = json.loads(ann.read_text())
    np.testing.assert_allclose(table.keypoints.reshape(14, -1),
                               [a["keypoints"] for a in data["annotations"]], rtol=1e-6)


def test_wholebody_missing_part_is_named(tmp_path):
    ann = _need(DATA / "coco/test_coco_wholebody.json")
    data = json.loads(ann.read_text())
    del data["annotations"][3]["face_kpts"]
    bad = tmp_path / "wb.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(PosebhError, match=r"annotations\[3\].*missing key 'face_kpts'"):
        get_reader("coco_wholebody")(bad, DATA / "coco", "coco_wholebody", dataset_name="wb")


def test_mpii_box_known_answer():
    # centre (101, 201) 1-based, scale 1 -> 200 px square, centre moved down 15 px, 0-based.
    np.testing.assert_allclose(mpii_box(np.array([101.0, 201.0]), 1.0), [0, 115, 200, 200])


def test_mpii_sample():
    ann = _need(DATA / "mpii/test_mpii.json")
    table, report = get_reader("mpii")(ann, DATA / "mpii", "mpii", dataset_name="mpii",
                                       check_images=True)
    data = json.loads(ann.read_text())
    assert len(table) == len(data) == report.instances
    for row, record in enumerate(data):
        side = 200 * record["scale"]
        assert table.boxes[row, 2] == pytest.approx(side, rel=1e-5)
        cx, cy = table.boxes[row, :2] + side / 2
        assert (cx, cy) == pytest.approx((record["center"][0] - 1,
                                          record["center"][1] + 15 * record["scale"] - 1),
                                         rel=1e-5)
        visible = np.asarray(record["joints_vis"]) > 0
        np.testing.assert_allclose(table.keypoints[row, visible, :2],
                                   np.asarray(record["joints"])[visible] - 1, rtol=1e-5)
        assert (table.keypoints[row, :, 2] == np.where(visible, 2, 0)).all()
        assert table.image_files[table.image_index[row]] == record["image"]
    assert table.image_sizes.min() > 0  # filled by decoding


def test_projection_known_answer():
    # Identity rotation, camera at z = -1000: a point at the origin lands on the principal point.
    uv, depth = project_points(np.array([[0.0, 0.0, 0.0], [100.0, -50.0, 0.0]]), np.eye(3),
                               np.array([0.0, 0.0, -1000.0]), np.array([1000.0, 500.0]),
                               np.array([320.0, 240.0]))
    np.testing.assert_allclose(uv, [[320, 240], [420, 215]])
    np.testing.assert_allclose(depth, [1000, 1000])


def test_interhand_projections_fall_inside_boxes_and_hands_are_masked():
    ann = _need(DATA / "interhand2.6m/test_interhand2.6m_data.json")
    table, report = get_reader("interhand")(ann, DATA / "interhand2.6m", "interhand",
                                            dataset_name="ih", check_images=True)
    data = json.loads(ann.read_text())
    assert len(table) == 4 and report.invalid_instances == 0
    assert table.extras["hand_types"].tolist() == [a["hand_type"] for a in data["annotations"]]
    for row in range(len(table)):
        x, y, w, h = table.boxes[row]
        points = table.keypoints[row]
        labelled = points[:, 2] > 0
        assert labelled.any()
        inside = ((points[labelled, 0] >= x) & (points[labelled, 0] <= x + w)
                  & (points[labelled, 1] >= y) & (points[labelled, 1] <= y + h))
        assert inside.all()
        hand = table.extras["hand_types"][row]
        assert labelled[:21].any() == (hand in ("right", "interacting"))
        assert labelled[21:].any() == (hand in ("left", "interacting"))


def test_interhand_missing_camera_file(tmp_path):
    source = _need(DATA / "interhand2.6m")
    for name in ("test_interhand2.6m_data.json", "test_interhand2.6m_joint_3d.json"):
        shutil.copy(source / name, tmp_path / name)
    with pytest.raises(PosebhError, match="camera file not found"):
        get_reader("interhand")(tmp_path / "test_interhand2.6m_data.json", source,
                                "interhand", dataset_name="ih")


def test_interhand_unknown_capture_is_named(tmp_path):
    source = _need(DATA / "interhand2.6m")
    for name in ("test_interhand2.6m_camera.json", "test_interhand2.6m_joint_3d.json"):
        shutil.copy(source / name, tmp_path / name)
    data = json.loads((source / "test_interhand2.6m_data.json").read_text())
    data["images"][0]["camera"] = "999"
    (tmp_path / "test_interhand2.6m_data.json").write_text(json.dumps(data))
    reader = get_reader("interhand")
    with pytest.raises(PosebhError, match=r"annotations\[0\].*no camera '999' of capture"):
        reader(tmp_path / "test_interhand2.6m_data.json", source, "interhand", dataset_name="i")
    table, report = reader(tmp_path / "test_interhand2.6m_data.json", source, "interhand",
                           dataset_name="ih", skip_invalid=True)
    assert len(table) == 3 and report.invalid_instances == 1
