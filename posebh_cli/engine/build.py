"""Wiring from a recipe to the pieces the loops use: type table, model, datasets, transforms."""

from __future__ import annotations

from dataclasses import dataclass

from posebh_cli.data.augment import AugmentConfig as TransformAugment
from posebh_cli.data.records import InstanceTable
from posebh_cli.data.topdown_dataset import TopDownDataset
from posebh_cli.data.transforms import TopDownConfig, TopDownTransform
from posebh_cli.models.posebh import PoseBHModel, build_model
from posebh_cli.recipe import DatasetConfig, Recipe
from posebh_cli.skeletons import KeypointTypeTable


def type_table_of(recipe: Recipe) -> KeypointTypeTable:
    return KeypointTypeTable.from_pairs([(d.name, d.skeleton) for d in recipe.datasets])


def build_recipe_model(recipe: Recipe, types: KeypointTypeTable | None = None) -> PoseBHModel:
    types = types or type_table_of(recipe)
    datasets = [(name, s.num_keypoints) for name, s in zip(types.datasets, types.skeletons)]
    softmax_sigma = recipe.loss.sigma if recipe.loss.keypoint == "softmax_ce" else None
    return build_model(recipe.model, datasets, seed=recipe.seed,
                       head_softmax_sigma=softmax_sigma)


def topdown_config(recipe: Recipe, dataset: DatasetConfig) -> TopDownConfig:
    aug = recipe.augment
    return TopDownConfig(
        input_size=tuple(recipe.model.input_size),
        heatmap_size=tuple(recipe.model.heatmap_size),
        sigma=recipe.loss.sigma,
        encoding=dataset.encoding,
        box_padding=recipe.box_padding(dataset.name),
        augment=TransformAugment(
            flip_prob=aug.flip_prob,
            half_body_prob=aug.half_body_prob if dataset.half_body else 0.0,
            half_body_min_joints=aug.half_body_min_joints,
            scale_sigma=aug.scale_sigma,
            rotation_sigma=aug.rotation_sigma,
            rotation_prob=aug.rotation_prob,
            center_jitter=aug.center_jitter,
        ),
    )


def load_table(dataset: DatasetConfig, split: str, *, boxes: str | None = None) -> InstanceTable:
    """A split's instances; `boxes` ("gt" or a detection file) overrides the recipe's source."""
    import dataclasses

    from posebh_cli.data.build import load_split

    if boxes is not None:
        split_cfg = dataclasses.replace(dataset.split(split), boxes=boxes)
        dataset = dataclasses.replace(dataset, **{split: split_cfg})
    return load_split(dataset, split)


@dataclass
class SplitData:
    """One dataset's split, ready for a loop."""

    config: DatasetConfig
    index: int
    table: InstanceTable
    dataset: TopDownDataset


def build_split(recipe: Recipe, types: KeypointTypeTable, dataset: DatasetConfig, split: str,
                *, train: bool, image_cache=None, table: InstanceTable | None = None,
                boxes: str | None = None) -> SplitData:
    """The top-down dataset of one recipe dataset split.

    boxes: overrides the split's box source ("gt" or a detection file).
    """
    if table is None:
        table = load_table(dataset, split, boxes=boxes)
        if train:
            table = table.select(table.labelled_rows())
    skeleton = types.skeleton(dataset.name)
    index = types.dataset_index(dataset.name)
    upper = skeleton.upper_body if (dataset.half_body and skeleton.upper_body) else None
    topdown = TopDownDataset(
        table, TopDownTransform(topdown_config(recipe, dataset)), index,
        flip_index=skeleton.flip_index,  # identity for unpaired skeletons: mirroring still helps
        upper_body=upper, image_cache=image_cache, train=train, base_seed=recipe.seed,
    )
    return SplitData(dataset, index, table, topdown)
