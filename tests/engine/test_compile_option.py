"""`train.compile = true` compiles the backbone and trains to the eager run's losses."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from engine_fixtures import tiny_recipe_text
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.data.synthetic.generate import generate_synthetic


def _losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_compiled_backbone_trains_like_eager(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_synthetic(data, images_per_family=4, workers=1)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(tiny_recipe_text(data))
    losses = {}
    counters = torch._dynamo.utils.counters
    for compiled in (False, True):
        counters.clear()
        run_dir = tmp_path / f"run_{compiled}"
        result = CliRunner().invoke(app, [
            "train", str(recipe), "--run-dir", str(run_dir), "--device", "cpu",
            "--max-steps", "2", "--set", f"train.compile={str(compiled).lower()}"])
        assert result.exit_code == 0, result.output
        losses[compiled] = _losses(run_dir)
        assert (counters["stats"]["unique_graphs"] > 0) == compiled  # dynamo traced only then
    assert len(losses[True]) == 2
    for eager, compiled in zip(losses[False], losses[True], strict=True):
        assert abs(eager - compiled) <= 1e-4 * abs(eager)
