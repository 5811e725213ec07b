"""`posebh train` with `model.pretrained` loads the backbone and reports the keys that did not."""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.engine.build import build_recipe_model, type_table_of
from posebh_cli.recipe import load_recipe


def test_train_reports_the_pretrained_weights_it_loaded(write_recipe, tmp_path) -> None:
    recipe_path = write_recipe()
    recipe = load_recipe(recipe_path)
    state = build_recipe_model(recipe, type_table_of(recipe)).backbone.state_dict()
    expected = len(state) - 1
    del state["norm.bias"]
    state["mystery"] = torch.zeros(3)
    weights = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    result = CliRunner().invoke(app, [
        "train", str(recipe_path), "--run-dir", str(tmp_path / "run"), "--device", "cpu",
        "--max-steps", "1", "--no-validate", "--set", f"model.pretrained={weights.as_posix()}"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())  # rich wraps long lines
    assert f"{expected} tensors loaded" in flat
    assert "1 missing (kept at init): norm.bias" in flat
    assert "1 unexpected (not used): mystery" in flat
