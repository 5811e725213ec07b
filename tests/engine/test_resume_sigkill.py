"""A run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run.

Run A trains the 3-stage tiny recipe (9 steps, checkpoints every 2 steps and at stage ends) in
this process. Run B is `python -m posebh_cli train` in a subprocess, killed (1) from outside
once a checkpoint at step >= 2 is on disk, mid-epoch, or (2) by itself in the middle of writing a
checkpoint (trainer_state.pt already replaced, model.safetensors and run.json not yet); then
`posebh train --resume` finishes it. Every tensor must be bitwise equal: the data order and
augmentation are functions of the step, the Gumbel noise is seeded by the step, and the global
RNG (drop-path, drop_path = 0.1 here) is restored from the checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_recipes import recipe_text
from safetensors.torch import load_file
from typer.testing import CliRunner

from posebh_cli.cli import app

pytestmark = pytest.mark.slow  # two subprocess runs and three in-process ones: ~30 s here

REPO = Path(__file__).resolve().parents[2]
TOTAL_STEPS = 9
runner = CliRunner()

# Runs the CLI as `python -m posebh_cli` does, but SIGKILLs itself on the 3rd weights save
# (the step-4 checkpoint): after trainer_state.pt was replaced, before the weights and run.json.
KILL_INSIDE_CHECKPOINT = """
import os, signal
from posebh_cli.io import checkpoint
real, calls = checkpoint.save_weights, []
def save_weights(path, model):
    calls.append(path)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, model)
checkpoint.save_weights = save_weights
from posebh_cli.cli import app
app(prog_name="posebh")
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def _train_in_process(*args) -> None:
    result = runner.invoke(app, ["train", *map(str, args), "--device", "cpu", "--no-validate"])
    assert result.exit_code == 0, result.output


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.pop("samples_per_s")  # wall-clock speed: the only column allowed to differ
    return rows


def _step_on_disk(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "run.json").read_text())["step"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


@pytest.fixture(scope="module")
def recipe(synthetic_root, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    path.write_text(recipe_text(synthetic_root), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def uninterrupted(recipe, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("A") / "run"
    _train_in_process(recipe, "--run-dir", run_dir)
    return run_dir


def _assert_same_run(a: Path, b: Path) -> None:
    weights_a, weights_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    differ = [name for name in weights_a if not torch.equal(weights_a[name], weights_b[name])]
    assert differ == [], f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    assert json.loads((b / "run.json").read_text())["step"] == TOTAL_STEPS
    assert _metrics(a) == _metrics(b)  # every logged loss term of every step, killed rows dropped


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(recipe, uninterrupted, tmp_path):
    run_dir = tmp_path / "B"
    process = subprocess.Popen(
        [sys.executable, "-m", "posebh_cli", "train", str(recipe), "--run-dir", str(run_dir),
         "--device", "cpu", "--no-validate"],
        cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while _step_on_disk(run_dir) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = _step_on_disk(run_dir)
    # Each step takes far longer than the poll, so the kill lands inside the next step.
    assert 2 <= killed_at < TOTAL_STEPS
    _train_in_process(recipe, "--run-dir", run_dir, "--resume")
    _assert_same_run(uninterrupted, run_dir)


def test_sigkill_inside_a_checkpoint_write_then_resume(recipe, uninterrupted, tmp_path):
    from posebh_cli.io import checkpoint as ckpt

    run_dir = tmp_path / "B"
    process = subprocess.run(
        [sys.executable, "-c", KILL_INSIDE_CHECKPOINT, "train", str(recipe), "--run-dir",
         str(run_dir), "--device", "cpu", "--no-validate"],
        cwd=tmp_path, env=_env(), capture_output=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()
    # A mixed checkpoint: the trainer state of step 4, weights and run.json of step 3.
    assert ckpt.load_trainer_state(run_dir / "trainer_state.pt")["step"] == 4
    assert _step_on_disk(run_dir) == 3
    # Nothing half-written: every file parses, no temporary file is left behind.
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")
                or p.suffix == ".tmp"]
    load_file(run_dir / "model.safetensors")
    _train_in_process(recipe, "--run-dir", run_dir, "--resume")
    _assert_same_run(uninterrupted, run_dir)
