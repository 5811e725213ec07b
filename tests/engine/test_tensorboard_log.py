"""TensorBoard events of a run: tags, values, purge on resume, off when not installed."""

from __future__ import annotations

import pytest
from engine_recipes import STAGE_STEPS
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.engine import tensorboard_log
from posebh_cli.engine.tensorboard_log import TENSORBOARD_DIR, TensorBoardLog, validation_scalars


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard shows them (purged events removed)."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_validation_scalars_keep_the_metrics_and_drop_counts():
    report = {"synthetic_hand": {
        "metric": "pck", "num_predictions": 3, "flip_test": True, "images_per_second": 9.0,
        "oks": {"AP": 0.25, "AR": 0.5},
        "pck": {"PCK@0.2": 0.75, "EPE": 4.0, "instances": 3, "excluded_instances": 0,
                "per_keypoint": [0.5, 1.0]},
    }}
    assert validation_scalars(report) == {
        "synthetic_hand/oks/AP": 0.25, "synthetic_hand/oks/AR": 0.5,
        "synthetic_hand/pck/PCK@0.2": 0.75, "synthetic_hand/pck/EPE": 4.0}


def test_a_resumed_log_replaces_the_killed_attempts_later_steps(tmp_path):
    pytest.importorskip("tensorboard")
    first = TensorBoardLog(tmp_path)
    for step in range(1, 6):  # the killed attempt got to step 5; its checkpoint is at 3
        first.train(step, {"loss": float(step)})
    first.close()
    resumed = TensorBoardLog(tmp_path, start_step=3)
    for step in (4, 5, 6):
        resumed.train(step, {"loss": 10.0 * step})
    resumed.validation(6, {"d": {"oks": {"AP": 0.5}}})
    resumed.close()
    scalars = _scalars(tmp_path / TENSORBOARD_DIR)
    assert scalars["train/loss"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0),
                                     (6, 60.0)]
    assert scalars["val/d/oks/AP"] == [(6, 0.5)]
    again = TensorBoardLog(tmp_path)  # a fresh run in the same folder hides every older event
    again.train(1, {"loss": -1.0})
    again.close()
    assert _scalars(tmp_path / TENSORBOARD_DIR)["train/loss"] == [(1, -1.0)]


def _train(recipe_path, run_dir, *extra):
    return CliRunner().invoke(app, ["train", str(recipe_path), "--run-dir", str(run_dir),
                                    "--device", "cpu", *extra])


def test_posebh_train_writes_train_and_validation_curves(write_recipe, tmp_path):
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    result = _train(write_recipe(), run_dir, "--max-steps", str(STAGE_STEPS))  # a stage end
    assert result.exit_code == 0, result.output
    assert "TensorBoard events:" in result.output
    scalars = _scalars(run_dir / TENSORBOARD_DIR)
    steps = list(range(1, STAGE_STEPS + 1))
    assert [step for step, _ in scalars["train/loss"]] == steps  # log_every = 1
    assert {"train/kpt", "train/lr", "train/samples_per_s", "train/ppc"} <= set(scalars)
    validation = [tag for tag in scalars if tag.startswith("val/") and tag.endswith("/oks/AP")]
    assert validation and all(scalars[tag][0][0] == STAGE_STEPS for tag in validation)
    resumed = _train(write_recipe(), run_dir, "--max-steps", str(STAGE_STEPS + 1), "--resume",
                     "--no-validate")
    assert resumed.exit_code == 0, resumed.output
    assert [s for s, _ in _scalars(run_dir / TENSORBOARD_DIR)["train/loss"]] == [*steps,
                                                                                 STAGE_STEPS + 1]


def test_off_by_recipe_or_when_tensorboard_is_not_installed(write_recipe, tmp_path, monkeypatch):
    result = _train(write_recipe(), tmp_path / "off", "--max-steps", "1", "--no-validate",
                    "--set", "train.tensorboard=false")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "off" / TENSORBOARD_DIR).exists()
    monkeypatch.setattr(tensorboard_log, "tensorboard_installed", lambda: False)
    result = _train(write_recipe(), tmp_path / "missing", "--max-steps", "1", "--no-validate")
    assert result.exit_code == 0, result.output
    assert ("the tensorboard package is not installed: pip install 'posebh[tensorboard]'"
            in " ".join(result.output.split()))
    assert not (tmp_path / "missing" / TENSORBOARD_DIR).exists()
