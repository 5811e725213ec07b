"""`train.image_cache_gb` sizes the trainer's decoded-image cache (too small a budget thrashes)."""

from __future__ import annotations

import torch

from posebh_cli.engine.distributed import DistInfo
from posebh_cli.engine.trainer import Trainer
from posebh_cli.recipe import load_recipe


def test_trainer_cache_takes_the_recipe_budget(write_recipe, tmp_path) -> None:
    recipe = load_recipe(write_recipe(), ["train.image_cache_gb=0.5"])
    trainer = Trainer(recipe, tmp_path / "run", torch.device("cpu"), DistInfo(), validate=False)
    assert trainer.image_cache.max_bytes == 2**29
    default = Trainer(load_recipe(write_recipe()), tmp_path / "run2", torch.device("cpu"),
                      DistInfo(), validate=False)
    assert default.image_cache.max_bytes == 2 * 2**30
