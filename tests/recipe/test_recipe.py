from __future__ import annotations

from pathlib import Path

import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.recipe import load_recipe, recipe_from_table

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name = "mini"
[model]
backbone = "tiny"
input_size = [128, 96]
heatmap_size = [32, 24]
moe = false
[[datasets]]
name = "people"
skeleton = "coco"
root = "data/x"
train = { ann = "a.json", images = "img" }
[[stages]]
name = "all"
steps = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_shipped_recipes_validate():
    for name in ("vitb_mdt", "vith_mdt"):
        recipe = load_recipe(REPO / "recipes" / f"{name}.toml")
        assert [d.name for d in recipe.datasets] == [
            "coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]
        assert [s.lr_scale for s in recipe.stages] == [1.0, 0.1, 0.01]
        assert [s.epochs for s in recipe.stages] == [50, 40, 10]
        assert recipe.stages[0].train == ("embedding_head",)
        assert not recipe.stages[0].css and recipe.stages[1].css
    assert load_recipe(REPO / "recipes" / "vith_mdt.toml").model.expert_dim == 320


def test_defaults_fill_unspecified_keys(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert recipe.optimizer.lr == 1e-3 and recipe.optimizer.layer_decay == 0.75
    assert recipe.prototypes.eps == 0.05 and recipe.loss.sigma == 2.0
    assert recipe.datasets[0].train.boxes == "gt"
    assert recipe.datasets[0].reader == "coco"


def test_overrides_address_nested_keys_and_named_entries(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL), [
        "train.batch_size=7", "datasets.people.root=/elsewhere", "stages.all.steps=3",
        "stages.0.lr_scale=0.5", "model.input_size=[64, 48]", "model.heatmap_size=[16, 12]"])
    assert recipe.train.batch_size == 7
    assert recipe.datasets[0].root == "/elsewhere"
    assert recipe.stages[0].steps == 3 and recipe.stages[0].lr_scale == 0.5
    assert recipe.model.input_size == (64, 48)


def test_resolved_recipe_round_trips_through_toml(tmp_path):
    import tomllib

    recipe = load_recipe(REPO / "recipes" / "vitb_mdt.toml")
    again = recipe_from_table(tomllib.loads(recipe.to_toml()), "resolved.toml")
    assert again == recipe


def test_absolute_paths(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL)).with_absolute_paths(tmp_path)
    assert recipe.datasets[0].root == str((tmp_path / "data/x").resolve())


@pytest.mark.parametrize(("edit", "needle"), [
    (("[model]", "[model]\nbackbon = 'tiny'"), "model.backbon: unknown key; did you mean 'backbone'?"),
    (("moe = false", "moe = 'no'"), "model.moe: expected true or false"),
    (("[model]", "[train]\nimage_cache_gb = 0\n[model]"), "train.image_cache_gb: expected a value > 0.0"),
    (("steps = 10", "steps = 10\nlr_scale = -1.0"), "stages[0].lr_scale: expected a value > 0.0"),
    (("skeleton = \"coco\"", "skeleton = \"coco\"\nratio = -0.5"), "datasets[0].ratio: expected a value > 0.0"),
    (("skeleton = \"coco\"", "skeleton = \"coco\"\nbox_padding = 0"), "datasets[0].box_padding: expected a value > 0.0"),
    (("skeleton = \"coco\"", "skeleton = \"coco\"\nloss_weight = -1"), "datasets[0].loss_weight: expected a value >= 0.0"),
    (("skeleton = \"coco\"", "skeleton = \"cocoo\""), "datasets[0].skeleton: unknown skeleton 'cocoo' (did you mean 'coco'?)"),
    (("backbone = \"tiny\"", "backbone = \"tinny\""), "model.backbone: expected one of tiny, small, base, large, huge, got 'tinny' (did you mean 'tiny'?)"),
    (("steps = 10", "steps = 10\nepochs = 2"), "stages[0]: give exactly one of epochs"),
    (("heatmap_size = [32, 24]", "heatmap_size = [30, 24]"), "model.heatmap_size[0]: expected 32"),
    (("name = \"mini\"", "name = \"mini\"\nsed = 1"), "sed: unknown key; did you mean 'seed'?"),
    (("input_size = [128, 96]", "input_size = 128"), "model.input_size: expected a list of 2 values"),
    (("moe = false", "stem_channels = [16, 32, 64]"), "model.stem_channels: 3 stride-2 convs give a stride of 8; model.patch_size 16 needs 4 widths"),
    (("moe = false", "stem_channels = [16, 0, 64, 128]"), "model.stem_channels: expected a value >= 1, got 0"),
    (("moe = false", "stem_channels = 'wide'"), "model.stem_channels: expected a list of integers"),
    (("moe = false", "pos_embed_init = 'fourier'"), "model.pos_embed_init: expected one of random, sincos"),
])
def test_bad_recipes_name_the_key(tmp_path, edit, needle):
    path = write(tmp_path, MINIMAL.replace(*edit, 1))
    with pytest.raises(PosebhError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message and needle in message
    assert "\n" not in message


def test_unreadable_recipe_files(tmp_path):
    with pytest.raises(PosebhError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.toml")
    with pytest.raises(PosebhError, match="not valid TOML"):
        load_recipe(write(tmp_path, "name = [unclosed"))
    with pytest.raises(PosebhError, match="expected KEY=VALUE"):
        load_recipe(write(tmp_path, MINIMAL), ["train.batch_size"])
    with pytest.raises(PosebhError, match="no entry 'nobody' in datasets"):
        load_recipe(write(tmp_path, MINIMAL), ["datasets.nobody.root=x"])


def test_ratio_on_some_datasets_only_is_refused(tmp_path):
    text = MINIMAL.replace('root = "data/x"', 'root = "data/x"\nratio = 1.0') + """
[[datasets]]
name = "animals"
skeleton = "coco"
train = { ann = "b.json" }
"""
    with pytest.raises(PosebhError, match=r"datasets\[1\].ratio: give a ratio for every dataset"):
        load_recipe(write(tmp_path, text))


def test_box_padding_is_per_dataset_with_the_augment_value_as_default(tmp_path):
    from posebh_cli.engine.build import topdown_config

    text = MINIMAL.replace("moe = false", "moe = false\n[augment]\nbox_padding = 1.3") + """
[[datasets]]
name = "hands"
skeleton = "onehand10k"
box_padding = 1.1
train = { ann = "b.json" }
"""
    recipe = load_recipe(write(tmp_path, text), ["datasets.people.box_padding=1.2"])
    assert recipe.box_padding("hands") == 1.1 and recipe.box_padding("people") == 1.2
    assert topdown_config(recipe, recipe.dataset("hands")).box_padding == 1.1
    plain = load_recipe(write(tmp_path, text))
    assert plain.box_padding("people") == 1.3
    assert topdown_config(plain, plain.dataset("people")).box_padding == 1.3
    with pytest.raises(PosebhError, match="unknown dataset 'hand'"):
        plain.box_padding("hand")


def test_loss_weights_per_dataset_default_to_one(tmp_path):
    text = MINIMAL + """
[[datasets]]
name = "hands"
skeleton = "onehand10k"
loss_weight = 1.5
train = { ann = "b.json" }
"""
    assert load_recipe(write(tmp_path, text)).loss_weights() == {"people": 1.0, "hands": 1.5}
    recipe = load_recipe(write(tmp_path, text), ["datasets.people.loss_weight=0.5"])
    assert recipe.loss_weights() == {"people": 0.5, "hands": 1.5}
