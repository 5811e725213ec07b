"""`posebh train` under torchrun with 2 CPU processes (gloo): both ranks end with the same
weights and prototype table, and rank 0 alone writes the run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_recipes import recipe_text
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # two fresh processes import torch and train: ~20-40 s here

REPO = Path(__file__).resolve().parents[2]

# The CLI as `python -m posebh_cli` runs it, plus: each rank saves its final state dict.
EACH_RANK_SAVES = """
import os, sys
import torch
from posebh_cli.engine import trainer

real_run = trainer.Trainer.run

def run(self):
    state = real_run(self)
    torch.save({k: v.detach().cpu() for k, v in self.model.state_dict().items()},
               os.path.join(os.environ["RANK_STATE_DIR"], f"rank{self.dist.rank}.pt"))
    return state

trainer.Trainer.run = run
from posebh_cli.cli import app
app(prog_name="posebh", args=sys.argv[1:])
"""


def test_two_gloo_ranks_train_in_lockstep(synthetic_root, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(recipe_text(synthetic_root), encoding="utf-8")
    script = tmp_path / "each_rank_saves.py"
    script.write_text(EACH_RANK_SAVES)
    run_dir = tmp_path / "runs" / "tiny"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
               RANK_STATE_DIR=str(tmp_path))
    # Four steps: three of stage 'learn' (prototype learning, all-reduced sums) and one of the
    # CSS stage, where only the keypoint heads train.
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), "train", str(recipe), "--run-dir", str(run_dir), "--device", "cpu",
         "--no-validate", "--max-steps", "4"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    differ = [name for name in rank0 if not torch.equal(rank0[name], rank1[name])]
    # BatchNorm running statistics (heads) follow each rank's own batches, as under DDP;
    # rank 0's are the ones saved. Every parameter and the prototype table must agree.
    bn_buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert [name for name in differ if not name.endswith(bn_buffers)] == []
    from posebh_cli.engine.build import build_recipe_model
    from posebh_cli.recipe import load_recipe

    initial = build_recipe_model(load_recipe(recipe)).state_dict()
    for name in ("prototype_table.prototypes", "backbone.blocks.0.attn.qkv.weight"):
        assert not torch.equal(initial[name], rank0[name]), name  # it did learn, in lockstep
    saved = load_file(run_dir / "model.safetensors")
    assert all(torch.equal(saved[name], rank0[name]) for name in saved)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["step"] == 4 and info["stage"] == "css"
    # Every labelled training instance once per epoch (padded to whole steps), 2 ranks x batch 4.
    instances = sum(
        sum(1 for ann in json.loads(path.read_text())["annotations"] if ann["num_keypoints"] > 0)
        for path in (synthetic_root / "annotations").glob("*_train.json"))
    assert info["steps_per_epoch"] == -(-instances // 8) > 0
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    assert not list(run_dir.glob("*.tmp"))
