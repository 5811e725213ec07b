"""Appending a dataset (new skeleton) to a trained model: weights carried over exactly."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from posebh_cli.engine.build import build_recipe_model, type_table_of
from posebh_cli.engine.extend_run import add_dataset, default_like, extended_recipe
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import DatasetConfig, SplitConfig, recipe_from_table


def _recipe(ratios: bool = False):
    datasets = [{"name": "people", "skeleton": "coco", "train": {"ann": "a.json"}},
                {"name": "animals", "skeleton": "ap10k", "train": {"ann": "b.json"}}]
    if ratios:
        datasets[0]["ratio"], datasets[1]["ratio"] = 1.0, 3.0
    return recipe_from_table({
        "name": "tiny", "model": {"backbone": "tiny", "input_size": [64, 48],
                                  "heatmap_size": [16, 12], "head_channels": 8,
                                  "embed_head_channels": 8, "embedding_dim": 4,
                                  "expert_dim": 16, "prototypes_per_type": 2},
        "datasets": datasets, "stages": [{"name": "s", "steps": 1}]}, "test")


NEW = DatasetConfig(name="hands", skeleton="onehand10k", format="coco", root="/data",
                    train=SplitConfig(ann="h.json", images="/data/img"))


def test_add_dataset_copies_every_weight_and_appends_one_block():
    recipe = _recipe()
    model = build_recipe_model(recipe)
    with torch.no_grad():  # make the source distinguishable from a fresh build
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    extended = add_dataset(model, recipe, NEW, like="animals")
    assert extended.types.datasets == ("people", "animals", "hands")
    assert extended.types.offset("hands") == 34 and extended.types.num_types == 55
    old, new = model.state_dict(), extended.model.state_dict()
    for key, value in old.items():
        if key.endswith(("expert_weight", "expert_bias")):
            assert torch.equal(new[key][:2], value) and torch.equal(new[key][2], value[1])
        elif key == "prototype_table.prototypes":
            assert new[key].shape == (55, 2, 4) and torch.equal(new[key][:34], value)
        else:
            assert torch.equal(new[key], value), key
    for key in new:
        if key.startswith("heads.hands.deconv"):
            assert torch.equal(new[key], old[key.replace("hands", "animals", 1)])
    assert not new["heads.hands.final.weight"].any() and not new["heads.hands.final.bias"].any()
    # The new dataset's images route exactly like the source's: identical features.
    images = torch.randn(2, 3, 64, 48)
    model.eval()
    with torch.no_grad():
        source = model.backbone(images, torch.tensor([1, 1]))
        copied = extended.model.backbone(images, torch.tensor([2, 2]))
    assert torch.allclose(source, copied)
    # And the extended recipe rebuilds the same architecture (what load_run does).
    rebuilt = build_recipe_model(extended.recipe)
    rebuilt.load_state_dict(new, strict=True)


def test_default_like_prefers_the_same_family():
    types = type_table_of(_recipe())
    assert default_like(types, "apt36k") == "animals"
    assert default_like(types, "onehand10k") == "people"  # no hand dataset: the first one


def test_extended_recipe_borrows_the_ratio_and_refuses_a_taken_name():
    recipe = extended_recipe(_recipe(ratios=True), NEW, "animals")
    assert recipe.dataset("hands").ratio == 3.0
    with pytest.raises(PosebhError, match="already has a dataset"):
        extended_recipe(_recipe(), dataclasses.replace(NEW, name="people"), "animals")
