"""`posebh prepare` through the Typer app: samples succeed, every bad input is one line, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.data.prepared_index import load_index

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.fixture
def coco_root(tmp_path) -> Path:
    if not (DATA / "coco").exists():
        pytest.skip("sample data not found")
    root = tmp_path / "coco"
    shutil.copytree(DATA / "coco", root)
    return root


@pytest.mark.parametrize("fmt,folder,ann", [
    ("coco", "coco", "test_coco.json"), ("aic", "aic", "test_aic.json"),
    ("mpii", "mpii", "test_mpii.json"), ("ap10k", "ap10k", "test_ap10k.json"),
    ("coco_wholebody", "coco", "test_coco_wholebody.json"),
    ("interhand", "interhand2.6m", "test_interhand2.6m_data.json"),
    ("onehand10k", "onehand10k", "test_onehand10k.json"),
    ("ochuman", "ochuman", "test_ochuman.json"),
    ("apt36k", "apt36k_mock", "apt36k_posebh_layout_MOCK.json"),
])
def test_samples_prepare_with_json_summary(tmp_path, fmt, folder, ann):
    if not (DATA / folder / ann).exists():
        pytest.skip("sample data not found")
    images = "images" if fmt == "apt36k" else ""
    result = _run("prepare", fmt, "--root", str(DATA / folder), "--ann", ann, "--images",
                  images, "--split", "val", "--out", str(tmp_path), "--check-images", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["splits"][0]
    assert summary["split"] == "val" and summary["invalid_instances"] == 0
    table = load_index(tmp_path / f"{fmt}_val.npz")
    assert summary["instances"] == len(table) > 0
    assert sum(summary["labelled_per_joint"].values()) == int((table.keypoints[..., 2] > 0)
                                                              .sum())


def test_rich_summary(coco_root, tmp_path):
    result = _run("prepare", "coco", "--root", str(coco_root), "--ann", "test_coco.json",
                  "--images", "", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "labelled keypoints per joint" in result.output and "left_ankle" in result.output
    assert (tmp_path / "coco_train.npz").is_file()


def test_default_layout_and_default_out(tmp_path):
    if not (DATA / "coco").exists():
        pytest.skip("sample data not found")
    (tmp_path / "annotations").mkdir()
    shutil.copy(DATA / "coco/test_coco.json",
                tmp_path / "annotations/person_keypoints_val2017.json")
    shutil.copytree(DATA / "coco", tmp_path / "val2017", ignore=shutil.ignore_patterns("*.json"))
    result = _run("prepare", "coco", "--root", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert [s["split"] for s in json.loads(result.output)["splits"]] == ["val"]
    assert (tmp_path / ".posebh" / "coco_val.npz").is_file()


def _assert_one_line_exit_2(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = _error_lines(result)
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]


def _break(root: Path, edit) -> None:
    path = root / "test_coco.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


BAD_INPUTS = {
    "truncated JSON": (lambda root: (root / "test_coco.json").write_text(
        (root / "test_coco.json").read_text()[:1000]), "not valid JSON"),
    "wrong keypoint count": (lambda root: _break(root, lambda d: d["annotations"][2].update(
        keypoints=[0] * 30)), "skeleton 'coco' has 17 keypoints, the record has 10"),
    "zero-area box": (lambda root: _break(root, lambda d: d["annotations"][1].update(
        bbox=[5, 5, 0, 0])), "field 'bbox': w and h must be > 0"),
    "missing image": (lambda root: (root / "000000040083.jpg").unlink(),
                      "image file not found"),
    "corrupt image": (lambda root: (root / "000000040083.jpg").write_bytes(b"\0" * 100),
                      "image file is corrupt"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_one_line_exit_2_and_nothing_half_written(coco_root, tmp_path, case):
    out = tmp_path / "out"
    ok = _run("prepare", "coco", "--root", str(coco_root), "--ann", "test_coco.json",
              "--images", "", "--out", str(out))
    assert ok.exit_code == 0, ok.output
    before = (out / "coco_train.npz").read_bytes()
    damage, message = BAD_INPUTS[case]
    damage(coco_root)
    result = _run("prepare", "coco", "--root", str(coco_root), "--ann", "test_coco.json",
                  "--images", "", "--out", str(out), "--check-images")
    _assert_one_line_exit_2(result, message, "test_coco.json" if "image" not in case
                            else "000000040083.jpg")
    assert (out / "coco_train.npz").read_bytes() == before  # old index untouched
    assert sorted(p.name for p in out.iterdir()) == ["coco_train.npz"]  # no temp files


@pytest.mark.parametrize("case", ["wrong keypoint count", "zero-area box", "missing image"])
def test_skip_invalid_counts_instead(coco_root, tmp_path, case):
    damage, _ = BAD_INPUTS[case]
    damage(coco_root)
    result = _run("prepare", "coco", "--root", str(coco_root), "--ann", "test_coco.json",
                  "--images", "", "--out", str(tmp_path), "--skip-invalid", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["splits"][0]
    assert summary["invalid_instances"] >= 1 and summary["instances"] < 14
    assert summary["instances"] + summary["invalid_instances"] == 14
    assert summary["problems"]


def test_unknown_dataset_name():
    result = _run("prepare", "cocco", "--root", ".")
    _assert_one_line_exit_2(result, "unknown dataset format 'cocco'", "did you mean 'coco'",
                            "apt36k_raw")


def test_missing_root_and_missing_default_files(tmp_path):
    _assert_one_line_exit_2(_run("prepare", "coco"), "--root DIR is required")
    _assert_one_line_exit_2(_run("prepare", "coco", "--root", str(tmp_path)),
                            "no annotation file of format 'coco' found")


def test_synthetic_generates_and_indexes(tmp_path):
    pytest.importorskip("posebh_cli.data.synthetic")
    result = _run("prepare", "synthetic", "--out", str(tmp_path / "syn"), "--images", "2",
                  "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["synthetic"]["seed"] == 1
    names = sorted(f"{s['dataset']}_{s['split']}" for s in payload["splits"])
    assert names == sorted(f"synthetic_{f}_{s}" for f in ("human", "animal", "hand")
                           for s in ("train", "val"))
    human = load_index(tmp_path / "syn" / ".posebh" / "synthetic_human_train.npz")
    assert human.skeleton == "coco" and len(human) > 0
    assert all(Path(human.image_path(i)).is_file() for i in range(len(human)))
    bad = _run("prepare", "synthetic", "--out", str(tmp_path / "syn2"), "--images", "many")
    _assert_one_line_exit_2(bad, "--images many")
