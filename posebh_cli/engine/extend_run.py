"""Register a new dataset (and skeleton) in a trained run: one more block of keypoint types.

The extended run is an ordinary run: its recipe lists the new dataset last and its model is
exactly what `build_recipe_model` builds for that recipe, so every loader, `posebh predict
--decoder prototypes` and even `posebh train` (fine-tuning the new head) work unchanged. Design
choice (no model or recipe change): the new dataset gets
- its MoE expert copied from a source dataset (`like`), so its images are routed exactly as that
  dataset's are (METHOD.md §4b: transfer starts from the model of one trained dataset);
- a heatmap head whose deconvolutions are copied from the source head and whose final 1x1 conv
  is zero (METHOD.md §4b: "the final 1x1 is new"). A zero final layer outputs flat heatmaps, so
  the untrained head decodes with confidence 0 instead of plausible-looking noise; decode the
  new skeleton with the prototypes until the head is fine-tuned;
- K_new new rows of the prototype table (appended: global ids of existing types do not move),
  to be filled by `refresh_prototypes` from the new dataset's keypoint embeddings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from posebh_cli.errors import PosebhError
from posebh_cli.models.posebh import PoseBHModel
from posebh_cli.recipe import DatasetConfig, Recipe, recipe_from_table
from posebh_cli.skeletons import KeypointTypeTable, get_skeleton

PROTOTYPE_KEY = "prototype_table.prototypes"


@dataclass
class ExtendedRun:
    model: PoseBHModel
    recipe: Recipe
    types: KeypointTypeTable
    like: str  # the dataset whose expert and head deconvolutions the new dataset copied


def default_like(types: KeypointTypeTable, skeleton: str) -> str:
    """First dataset whose skeleton has the new skeleton's family (else the first dataset)."""
    family = get_skeleton(skeleton).family
    for name, existing in zip(types.datasets, types.skeletons):
        if existing.family == family:
            return name
    return types.datasets[0]


def extended_recipe(recipe: Recipe, dataset: DatasetConfig, like: str) -> Recipe:
    """The recipe with `dataset` appended (validated like a recipe file)."""
    if any(d.name == dataset.name for d in recipe.datasets):
        raise PosebhError(f"--name {dataset.name}: the run already has a dataset of that name")
    if recipe.datasets[0].ratio is not None:  # ratios are all-or-none: borrow the source's
        dataset = dataclasses.replace(dataset, ratio=recipe.dataset(like).ratio)
    table = dataclasses.replace(recipe, datasets=recipe.datasets + (dataset,)).to_table()
    return recipe_from_table(table, f"recipe of the run + dataset '{dataset.name}'")


def add_dataset(model: PoseBHModel, recipe: Recipe, dataset: DatasetConfig,
                like: str | None = None) -> ExtendedRun:
    """A new model, recipe and type table with `dataset` appended; weights carried over.

    model: the trained model of `recipe` (any device; the result is on the same device).
    like: recipe dataset to copy the MoE expert and head deconvolutions from (default:
    `default_like`).
    """
    from posebh_cli.engine.build import build_recipe_model, type_table_of

    types = type_table_of(recipe)
    like = like or default_like(types, dataset.skeleton)
    like_index = types.dataset_index(like)  # PosebhError with close matches when unknown
    new_recipe = extended_recipe(recipe, dataset, like)
    new_types = type_table_of(new_recipe)
    device = next(model.parameters()).device
    new_model = build_recipe_model(new_recipe, new_types)
    old_state = model.state_dict()
    state = new_model.state_dict()
    for key, target in state.items():
        if key.startswith(f"heads.{dataset.name}."):
            source = key.replace(f"heads.{dataset.name}.", f"heads.{like}.", 1)
            if source.split(".")[2] == "final":
                state[key] = torch.zeros_like(target)
            else:
                state[key] = old_state[source].clone()
        elif key.endswith(("expert_weight", "expert_bias")):
            old = old_state[key]  # (E, ...) -> (E + 1, ...): the new expert is a copy
            state[key] = torch.cat([old, old[like_index:like_index + 1]])
        elif key == PROTOTYPE_KEY:
            old = old_state[key]  # (J, M, F) -> (J + K_new, M, F); new rows stay random
            state[key] = torch.cat([old, target[old.shape[0]:].to(old.device)])
        else:
            if key not in old_state or old_state[key].shape != target.shape:
                raise ValueError(f"extending the model: no matching weight for '{key}'")
            state[key] = old_state[key]
    new_model.load_state_dict(state, strict=True)
    return ExtendedRun(new_model.to(device).eval(), new_recipe, new_types, like)
