"""`posebh eval --dataset ...` on a tiny trained run (CliRunner), and its user errors."""

from __future__ import annotations

import json
import shutil

import pytest
from cli_support import assert_user_error
from engine_fixtures import tiny_run  # noqa: F401  (session fixture)
from typer.testing import CliRunner

from posebh_cli.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


def test_eval_all_reproduces_training_validation(tiny_run, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tiny_run.root)  # no --run: runs/latest
    result = invoke("--dataset", "all", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    info = json.loads((tiny_run.run_dir / "run.json").read_text())
    validated = info["validation"][info["stage"]]  # the last stage's validation
    assert sorted(printed) == sorted(validated) == ["synth_animal", "synth_hand", "synth_human"]
    for name, report in printed.items():
        expected = validated[name]
        assert report["oks"] == pytest.approx(expected["oks"], abs=1e-12), name
        assert report["instances"] == expected["instances"]
    hand, hand_expected = printed["synth_hand"]["pck"], validated["synth_hand"]["pck"]
    for key in ("PCK@0.2", "AUC", "EPE"):
        assert hand[key] == pytest.approx(hand_expected[key], abs=1e-9)
    eval_dir = tiny_run.run_dir / "eval"
    results = json.loads((eval_dir / "synth_human_val_results.json").read_text())
    assert len(results) == printed["synth_human"]["instances"]
    assert len(results[0]["keypoints"]) == 17 * 3
    metrics = json.loads((eval_dir / "synth_hand_val_metrics.json").read_text())
    assert metrics["pck"]["EPE"] == pytest.approx(hand["EPE"])
    assert set(json.loads((eval_dir / "metrics.json").read_text())) == set(printed)


def test_eval_one_dataset_options_and_table(tiny_run, tmp_path):  # noqa: F811
    out = tmp_path / "ev"
    result = invoke("--dataset", "synth_hand", "--run", str(tiny_run.run_dir), "--no-flip",
                    "--decoder", "prototypes", "--device", "cpu", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "synth_hand" in result.stdout and "images/s" in result.stdout
    metrics = json.loads((out / "synth_hand_val_metrics.json").read_text())
    assert metrics["decoder"] == "prototypes" and metrics["flip_test"] is False
    assert metrics["images_per_second"] > 0
    assert len(json.loads((out / "synth_hand_val_results.json").read_text())[0]["keypoints"]) \
        == 21 * 3


def test_eval_checkpoint_and_detection_boxes(tiny_run, tmp_path):  # noqa: F811
    gt = json.loads((tiny_run.data / "annotations" / "human_val.json").read_text())
    detections = [{"image_id": a["image_id"], "bbox": a["bbox"], "category_id": 1,
                   "score": 0.9 if n == 0 else 0.1} for n, a in enumerate(gt["annotations"])]
    assert len(detections) >= 2
    det_file = tmp_path / "det.json"
    det_file.write_text(json.dumps(detections))
    result = invoke("--dataset", "synth_human", "--checkpoint",
                    str(tiny_run.run_dir / "model.safetensors"), "--boxes", str(det_file),
                    "--det-score-threshold", "0.5", "--device", "cpu", "--json",
                    "--out", str(tmp_path / "ev"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["synth_human"]
    assert report["instances"] == 1  # the 0.1 boxes fall under the threshold
    assert report["num_gt_instances"] == len(gt["annotations"])


def test_eval_user_errors(tiny_run, tmp_path, monkeypatch):  # noqa: F811
    run = str(tiny_run.run_dir)
    assert_user_error(invoke("--dataset", "nope", "--run", run), "--dataset nope",
                      "synth_human (coco, human)")
    assert_user_error(invoke("--dataset", "synth_hand", "--split", "test", "--run", run),
                      "no 'test' split")
    assert_user_error(invoke("--dataset", "all", "--split", "test", "--run", run),
                      "no dataset")
    assert_user_error(invoke("--dataset", "all", "--run", run, "--boxes", "det.json"),
                      "one dataset")
    assert_user_error(invoke("--dataset", "synth_human", "--run", run, "--boxes",
                             str(tmp_path / "missing.json")), "not found")
    assert_user_error(invoke("--dataset", "all", "--run", run, "--decoder", "argmax"),
                      "--decoder argmax")
    assert_user_error(invoke("--dataset", "all", "--run", run, "--predictions", "r.json"),
                      "one or the other")
    assert_user_error(invoke("--dataset", "all", "--run", run, "--checkpoint",
                             str(tiny_run.run_dir / "model.safetensors")), "not both")
    assert_user_error(invoke("--dataset", "all", "--checkpoint", str(tmp_path / "no.safetensors")),
                      "file not found")
    monkeypatch.chdir(tmp_path)  # no runs/latest here
    assert_user_error(invoke("--dataset", "all"), "runs/latest does not exist")


def test_eval_broken_run_directories(tiny_run, tmp_path):  # noqa: F811
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_run.run_dir, corrupt, ignore=shutil.ignore_patterns("eval", "*.pt"))
    (corrupt / "model.safetensors").write_bytes(b"not a checkpoint")
    assert_user_error(invoke("--dataset", "all", "--run", str(corrupt)),
                      "not a readable safetensors checkpoint")

    other = tmp_path / "other_arch"
    shutil.copytree(tiny_run.run_dir, other, ignore=shutil.ignore_patterns("eval", "*.pt"))
    recipe = other / "recipe.resolved.toml"
    recipe.write_text(recipe.read_text().replace("head_channels = 16",
                                                 "head_channels = 24", 1))
    assert_user_error(invoke("--dataset", "all", "--run", str(other)), "has shape")

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(tiny_run.run_dir / "model.safetensors", lonely / "model.safetensors")
    assert_user_error(invoke("--dataset", "all", "--checkpoint",
                             str(lonely / "model.safetensors")), "recipe.resolved.toml")
