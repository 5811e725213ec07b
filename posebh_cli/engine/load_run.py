"""Load a trained model from a run directory (or a model.safetensors with its run files beside it).

A run directory holds `recipe.resolved.toml` (how the model was built and how each dataset is
read), `model.safetensors` (the weights) and `run.json` (what was trained). The model is rebuilt
from the recipe and the weights are loaded strictly, so any mismatch is one clear error rather
than a silently half-loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posebh_cli.engine import run_dir as rd
from posebh_cli.errors import PosebhError
from posebh_cli.models.posebh import PoseBHModel
from posebh_cli.recipe import Recipe
from posebh_cli.skeletons import KeypointTypeTable


@dataclass
class LoadedRun:
    """A model ready for inference (eval mode, on its device) and the facts of its run."""

    model: PoseBHModel
    recipe: Recipe
    types: KeypointTypeTable
    run_dir: Path
    info: dict[str, Any]
    weights: Path

    @property
    def dataset_names(self) -> list[str]:
        return list(self.types.datasets)

    def describe_heads(self) -> str:
        """'synth_human (coco, human), ...' for error messages."""
        return ", ".join(f"{d} ({s.name}, {s.family})"
                         for d, s in zip(self.types.datasets, self.types.skeletons))


def _locate(run: Path | None, checkpoint: Path | None, runs_root: Path) -> tuple[Path, Path]:
    """(run directory, weights file) from --run / --checkpoint (default runs/latest)."""
    if run is not None and checkpoint is not None:
        raise PosebhError("give --run DIR or --checkpoint FILE, not both")
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if checkpoint.is_dir():
            raise PosebhError(f"--checkpoint {checkpoint}: expected a model.safetensors file, "
                              "got a folder (use --run DIR for a run directory)")
        if not checkpoint.is_file():
            raise PosebhError(f"--checkpoint {checkpoint}: file not found")
        return checkpoint.parent, checkpoint
    directory = rd.resolve_run_dir(run, runs_root)
    return directory, directory / rd.WEIGHTS_FILE


def _check_info_matches(info: dict[str, Any], types: KeypointTypeTable, info_path: Path) -> None:
    # run.json records what was trained; a recipe edited by hand afterwards must not silently
    # re-route heads to the wrong datasets.
    recorded = [(d.get("name"), d.get("skeleton"), d.get("num_keypoints"))
                for d in info.get("datasets", []) if isinstance(d, dict)]
    expected = [(d, s.name, s.num_keypoints) for d, s in zip(types.datasets, types.skeletons)]
    if recorded and recorded != expected:
        raise PosebhError(f"{info_path}: its datasets {[r[0] for r in recorded]} do not match "
                          f"{rd.RECIPE_FILE} ({list(types.datasets)}); the run directory was "
                          "modified by hand")


def load_run(run: Path | None = None, checkpoint: Path | None = None,
             device: torch.device | str = "cpu", *, runs_root: Path = Path("runs")) -> LoadedRun:
    """Rebuild the run's model and load its weights strictly.

    run: a run directory (default: `runs_root/latest`); checkpoint: a model.safetensors whose
    run.json and recipe.resolved.toml sit beside it. Every user mistake (missing or corrupt
    file, weights of another architecture) raises PosebhError naming the file.
    """
    from posebh_cli.engine.build import build_recipe_model, type_table_of
    from posebh_cli.io.checkpoint import load_run_info, load_weights_into
    from posebh_cli.recipe import load_recipe

    directory, weights = _locate(run, checkpoint, Path(runs_root))
    recipe_path = directory / rd.RECIPE_FILE
    if not recipe_path.is_file():
        raise PosebhError(f"{recipe_path}: not found; a checkpoint needs the "
                          f"{rd.RECIPE_FILE} of its run beside it")
    recipe = load_recipe(recipe_path)
    info_path = directory / rd.RUN_INFO_FILE
    info = load_run_info(info_path)
    types = type_table_of(recipe)
    _check_info_matches(info, types, info_path)
    model = build_recipe_model(recipe, types)
    load_weights_into(model, weights)
    model = model.to(torch.device(device)).eval()
    return LoadedRun(model, recipe, types, directory, info, weights)
