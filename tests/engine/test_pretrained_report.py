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


def test_resume_takes_the_weights_from_the_run_not_from_model_pretrained(write_recipe,
                                                                          tmp_path) -> None:
    recipe_path = write_recipe()
    recipe = load_recipe(recipe_path)
    state = build_recipe_model(recipe, type_table_of(recipe)).backbone.state_dict()
    weights = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    args = ["train", str(recipe_path), "--run-dir", str(tmp_path / "run"), "--device", "cpu",
            "--no-validate", "--set", f"model.pretrained={weights.as_posix()}"]
    first = CliRunner().invoke(app, [*args, "--max-steps", "1"])
    assert first.exit_code == 0, first.output
    weights.unlink()  # a resume must not need (or read) the file the run started from
    resumed = CliRunner().invoke(app, [*args, "--max-steps", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "tensors loaded" not in " ".join(resumed.output.split())
    assert "step 2" in resumed.output
