"""`posebh train` through the Typer app: run directory, per-stage validation, frozen parts,
non-finite losses and bad inputs (one line, exit 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import engine_recipes
import pytest
import torch
from engine_recipes import single_thread_torch  # noqa: F401  (autouse fixture)
from safetensors.torch import load_file
from typer.testing import CliRunner

from posebh_cli.cli import app

runner = CliRunner()
RUN_FILES = ("recipe.resolved.toml", "model.safetensors", "run.json", "trainer_state.pt",
             "metrics.csv")


def _train(*args: str):
    return runner.invoke(app, ["train", *map(str, args), "--device", "cpu"])


def _assert_one_line_exit_2(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return engine_recipes.make_synthetic_root(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def write_recipe(synthetic_root, tmp_path):
    def write(name: str = "recipe.toml", **kwargs) -> Path:
        path = tmp_path / name
        path.write_text(engine_recipes.recipe_text(synthetic_root, **kwargs), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="module")
def staged_run(synthetic_root, tmp_path_factory):
    """The 3-stage recipe trained stage by stage (--max-steps 3, then --resume to 6 and to 9),
    with the weights after each stage; validation runs at each stage end."""
    from posebh_cli.engine.build import build_recipe_model
    from posebh_cli.recipe import load_recipe

    base = tmp_path_factory.mktemp("train")
    recipe = base / "tiny.toml"
    recipe.write_text(engine_recipes.recipe_text(synthetic_root), encoding="utf-8")
    run_dir = base / "runs" / "tiny"
    initial = build_recipe_model(load_recipe(recipe)).state_dict()
    weights, outputs = [{k: v.clone() for k, v in initial.items()}], []
    for extra in (["--max-steps", "3"], ["--resume", "--max-steps", "6"], ["--resume"]):
        result = _train(recipe, "--run-dir", run_dir, *extra)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        weights.append(load_file(run_dir / "model.safetensors"))
    return {"recipe": recipe, "run_dir": run_dir, "weights": weights, "outputs": outputs,
            "info": json.loads((run_dir / "run.json").read_text())}


def test_run_directory_and_latest_link(staged_run):
    run_dir = staged_run["run_dir"]
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    latest = run_dir.parent / "latest"
    assert latest.is_symlink() and latest.resolve() == run_dir.resolve()
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))
    info = staged_run["info"]
    assert info["step"] == info["total_steps"] == 9 and info["stage"] == "all"
    assert info["prototypes"]["shape"] == [17 + 17 + 21, 3, 8]
    assert [d["num_keypoints"] for d in info["datasets"]] == [17, 17, 21]
    assert "done: step 9 of 9" in staged_run["outputs"][-1]
    resolved = (run_dir / "recipe.resolved.toml").read_text()
    assert str(engine_recipes.FAMILIES) not in resolved and 'name = "tiny_engine"' in resolved


def test_validation_metrics_of_every_stage(staged_run):
    validation = staged_run["info"]["validation"]
    assert list(validation) == ["learn", "css", "all"]
    for stage, results in validation.items():
        assert set(results) == {"synth_human", "synth_animal", "synth_hand"}, stage
        for name in ("synth_human", "synth_animal"):
            oks = results[name]["oks"]
            assert 0.0 <= oks["AP"] <= 1.0 and {"AP50", "AP75", "AR"} <= set(oks), (stage, name)
        pck = results["synth_hand"]["pck"]
        assert 0.0 <= pck["PCK@0.2"] <= 1.0 and pck["EPE"] > 0, stage
    table = staged_run["outputs"][1]
    assert "validation after stage 'css'" in table
    hand_row = next(line for line in table.splitlines() if "synth_hand" in line)
    pck = validation["css"]["synth_hand"]["pck"]["PCK@0.2"]
    assert f"{pck:.3f}" in hand_row  # the table shows the PCK column for hands


def test_progress_lines_in_captured_output(staged_run):
    # Off a terminal, one line per logged step (log_every = 1 here), counted to --max-steps.
    lines = [line for line in staged_run["outputs"][1].splitlines() if line.startswith("step ")]
    assert [line.split()[1:3] for line in lines] == [["4/6", "css"], ["5/6", "css"],
                                                     ["6/6", "css"]]
    assert all(" samples/s elapsed " in line and " ETA " in line for line in lines)
    assert "resuming at step 3 of 9 (stage 'css') from the last checkpoint" in (
        staged_run["outputs"][1])


def _changed(before: dict, after: dict, prefix: str) -> list[str]:
    names = [name for name in after if name.startswith(prefix)]
    assert names, prefix
    return [name for name in names if not torch.equal(before[name], after[name])]


def test_frozen_parts_and_prototypes_change_only_when_trained(staged_run):
    initial, learn, css, final = staged_run["weights"]
    # Stage 1 trains everything and learns the prototypes.
    for prefix in ("backbone.", "heads.", "embedding_head.", "prototype_table."):
        assert _changed(initial, learn, prefix), prefix
    # Stage 2 trains the keypoint heads only, prototypes frozen: nothing else may move (AdamW
    # moments of the frozen parameters must not keep updating them, nor weight decay).
    assert _changed(learn, css, "heads.")
    for prefix in ("backbone.", "embedding_head.", "prototype_table."):
        assert _changed(learn, css, prefix) == [], prefix
    # Stage 3 trains everything again with prototype learning on.
    for prefix in ("backbone.", "embedding_head.", "prototype_table."):
        assert _changed(css, final, prefix), prefix
    table = final["prototype_table.prototypes"]
    torch.testing.assert_close(table.norm(dim=-1), torch.ones(table.shape[:2]), atol=1e-5,
                               rtol=0)


def test_metrics_csv_one_row_per_step_with_css_columns(staged_run):
    with open(staged_run["run_dir"] / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert [r["stage"] for r in rows] == ["learn"] * 3 + ["css"] * 3 + ["all"] * 3
    assert all(r["css"] == "" for r in rows[:3]) and all(r["css"] != "" for r in rows[3:])
    for row in rows:
        assert None not in row, row  # no row longer than the header
        terms = ("kpt", "proto", "phm") + (("css",) if row["stage"] != "learn" else ())
        total = sum(float(row[t]) for t in terms)
        assert float(row["loss"]) == pytest.approx(total, rel=1e-4), row


def test_existing_run_needs_resume(staged_run):
    before = (staged_run["run_dir"] / "model.safetensors").read_bytes()
    result = _train(staged_run["recipe"], "--run-dir", staged_run["run_dir"])
    _assert_one_line_exit_2(result, "already holds a run", "--resume")
    assert (staged_run["run_dir"] / "model.safetensors").read_bytes() == before


def test_resume_of_finished_run_has_nothing_to_do(staged_run):
    result = _train(staged_run["recipe"], "--run-dir", staged_run["run_dir"], "--resume",
                    "--no-validate")
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output


def test_resume_without_checkpoint_exit_2(write_recipe, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _train(write_recipe(), "--run-dir", empty, "--resume")
    _assert_one_line_exit_2(result, "--resume", "trainer_state.pt")


def test_missing_recipe_exit_2(tmp_path):
    result = _train(tmp_path / "nope.toml", "--run-dir", tmp_path / "run")
    _assert_one_line_exit_2(result, "nope.toml", "not found")
    assert not (tmp_path / "run").exists()


def test_recipe_with_unknown_key_exit_2(write_recipe, tmp_path):
    path = write_recipe(train_extra="batch_sise = 4")
    result = _train(path, "--run-dir", tmp_path / "run")
    _assert_one_line_exit_2(result, "batch_sise")
    assert not (tmp_path / "run").exists()


def test_missing_annotation_file_exit_2(write_recipe, synthetic_root, tmp_path):
    text = engine_recipes.recipe_text(synthetic_root).replace(
        "annotations/animal_train.json", "annotations/no_such_file.json")
    path = tmp_path / "broken.toml"
    path.write_text(text)
    result = _train(path, "--run-dir", tmp_path / "run")
    _assert_one_line_exit_2(result, "no_such_file.json")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_non_finite_loss_stops_with_one_line_and_keeps_checkpoint(write_recipe, tmp_path,
                                                                  monkeypatch):
    from posebh_cli.engine import trainer as trainer_module
    from posebh_cli.engine.build import build_recipe_model
    from posebh_cli.io import checkpoint as ckpt
    from posebh_cli.recipe import load_recipe

    real = trainer_module.compute_losses
    calls = []

    def poisoned(model, images, batch, groups, settings, **kwargs):
        out = real(model, images, batch, groups, settings, **kwargs)
        calls.append(kwargs["sinkhorn_seed"])
        if len(calls) == 6:  # step index 5 (stage 'css'): one term turns NaN
            out.terms["ppc"] = torch.tensor(float("nan"))
            out.loss = out.loss + out.terms["ppc"]
            out.terms["loss"] = out.loss.detach()
        return out

    # The trainer calls the name it imported from engine.train_step.
    monkeypatch.setattr(trainer_module, "compute_losses", poisoned)
    recipe = write_recipe()
    run_dir = tmp_path / "run"
    result = _train(recipe, "--run-dir", run_dir, "--no-validate")
    line = _assert_one_line_exit_2(result, "non-finite loss at step 5", "ppc=nan", "css=",
                                   "kpt=", "loss=nan", str(run_dir))
    assert "Traceback" not in result.output, line
    assert len(calls) == 6
    info = ckpt.load_run_info(run_dir / "run.json")
    state = ckpt.load_trainer_state(run_dir / "trainer_state.pt")
    assert info["step"] == state["step"] == 4  # checkpoint_every = 2: the last good one
    model = build_recipe_model(load_recipe(recipe))
    ckpt.load_weights_into(model, run_dir / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))
    with open(run_dir / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5]
    monkeypatch.undo()  # the run resumes from its last good checkpoint
    resumed = _train(recipe, "--run-dir", run_dir, "--resume", "--max-steps", "5",
                     "--no-validate")
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.load_run_info(run_dir / "run.json")["step"] == 5


HEADS_ONLY_STAGE = """
[[stages]]
name = "heads"
steps = 3
train = ["keypoint_heads"]
prototypes = "frozen"
"""


def test_init_from_a_run_starts_from_its_weights(staged_run, write_recipe, tmp_path):
    recipe = write_recipe(stages=HEADS_ONLY_STAGE)
    source = staged_run["run_dir"]
    run_dir = tmp_path / "fine_tune"
    result = _train(recipe, "--run-dir", run_dir, "--max-steps", "1", "--no-validate",
                    "--set", f"model.init_from={source}")
    assert result.exit_code == 0, result.output
    assert (f"initialised from {source}: " in result.output
            and "datasets synth_human, synth_animal, synth_hand matched" in result.output), \
        result.output
    trained, tuned = staged_run["weights"][-1], load_file(run_dir / "model.safetensors")
    frozen = [k for k in tuned if not k.startswith("heads.")]
    assert frozen and all(torch.equal(tuned[k], trained[k]) for k in frozen)
    assert _changed(trained, tuned, "heads.")  # the step trained the heads from there
    # A resumed run takes its weights from its own checkpoint, not from init_from again.
    resumed = _train(recipe, "--run-dir", run_dir, "--resume", "--max-steps", "2",
                     "--no-validate", "--set", f"model.init_from={source}")
    assert resumed.exit_code == 0, resumed.output
    assert "initialised from" not in resumed.output and "resuming at step 1" in resumed.output


def test_init_from_a_corrupt_run_exit_2(staged_run, write_recipe, tmp_path):
    import shutil

    source = tmp_path / "copy"
    shutil.copytree(staged_run["run_dir"], source)
    (source / "model.safetensors").write_bytes(b"not a safetensors file")
    result = _train(write_recipe(), "--run-dir", tmp_path / "run", "--max-steps", "1",
                    "--set", f"model.init_from={source}")
    _assert_one_line_exit_2(result, "model.init_from:", "model.safetensors")
