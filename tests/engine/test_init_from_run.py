"""model.init_from: weights of another run, matched by dataset name (known-answer cases)."""

from __future__ import annotations

import pytest
import torch

from posebh_cli.engine.build import build_recipe_model, type_table_of
from posebh_cli.engine.init_from_run import init_from_run, transfer_weights
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import recipe_from_table

MODEL = {"backbone": "tiny", "input_size": [64, 48], "heatmap_size": [16, 12],
         "head_channels": 8, "embed_head_channels": 8, "embedding_dim": 4, "expert_dim": 16,
         "prototypes_per_type": 2}


def _recipe(datasets: list[tuple[str, str]], **model):
    return recipe_from_table({
        "name": "tiny", "model": {**MODEL, **model},
        "datasets": [{"name": n, "skeleton": s, "train": {"ann": "a.json"}} for n, s in datasets],
        "stages": [{"name": "s", "steps": 1}]}, "test")


def _trained(recipe):
    """A model whose every tensor differs from a fresh build (a stand-in for training)."""
    model = build_recipe_model(recipe)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor))
    return model


def _transfer(source_recipe, target_recipe, source_model=None):
    source = source_model or _trained(source_recipe)
    target = build_recipe_model(target_recipe)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(target, type_table_of(target_recipe), source,
                              type_table_of(source_recipe), "src")
    return source.state_dict(), fresh, target.state_dict(), report


def test_datasets_matched_by_name_in_any_order_and_new_ones_start_from_a_trained_expert():
    source_recipe = _recipe([("people", "coco"), ("animals", "ap10k")])
    # Reordered, one new dataset (hands, no hand family in the source), one renamed skeleton.
    target_recipe = _recipe([("animals", "ap10k"), ("hands", "onehand10k"), ("people", "coco")])
    old, fresh, new, report = _transfer(source_recipe, target_recipe)
    assert report.matched == ["animals", "people"]
    assert report.new == {"hands": "people"}  # no hand dataset: the first one
    assert report.unused == [] and report.kept_at_init == [
        k for k in new if k.startswith("heads.hands.")]
    for key, value in new.items():
        if key.startswith("heads.hands."):
            assert torch.equal(value, fresh[key]), key
        elif key.startswith("heads."):
            assert torch.equal(value, old[key]), key  # same name in both
        elif key.endswith(("expert_weight", "expert_bias")):
            # target rows (animals, hands, people) <- source rows (1, 0, 0)
            assert torch.equal(value, old[key][[1, 0, 0]]), key
        elif key == "prototype_table.prototypes":
            # target blocks: animals 0-16, hands 17-37, people 38-54; source: people 0-16,
            # animals 17-33
            assert torch.equal(value[0:17], old[key][17:34])
            assert torch.equal(value[38:55], old[key][0:17])
            assert torch.equal(value[17:38], fresh[key][17:38])
        else:
            assert torch.equal(value, old[key]), key
    assert report.loaded == len(new) - len(report.kept_at_init)


def test_same_name_other_skeleton_is_not_matched_and_unused_datasets_are_reported():
    source_recipe = _recipe([("people", "coco"), ("animals", "ap10k"), ("paws", "onehand10k")])
    target_recipe = _recipe([("people", "mpii")])
    old, fresh, new, report = _transfer(source_recipe, target_recipe)
    assert report.matched == [] and report.new == {"people": "people"}
    assert report.unused == ["people", "animals", "paws"]
    assert torch.equal(new["prototype_table.prototypes"], fresh["prototype_table.prototypes"])
    assert torch.equal(new["heads.people.final.weight"], fresh["heads.people.final.weight"])
    expert = "backbone.blocks.0.mlp.expert_weight"
    assert torch.equal(new[expert], old[expert][[0]])
    summary = report.summary()
    assert "datasets none matched" in summary and "people (expert copied from people)" in summary
    assert "not in this recipe: people, animals, paws" in summary


def test_other_sizes_keep_their_init_and_the_position_table_is_resampled():
    source_recipe = _recipe([("people", "coco")])
    # Larger input (8x6 tokens instead of 4x3), wider heads, another embedding width.
    target_recipe = _recipe([("people", "coco")], input_size=[128, 96], heatmap_size=[32, 24],
                            head_channels=16, embedding_dim=8)
    old, fresh, new, report = _transfer(source_recipe, target_recipe)
    assert new["backbone.pos_embed"].shape == (1, 48, 192)
    assert "backbone.pos_embed" not in report.kept_at_init
    # A bicubic resample of a constant table is that constant.
    flat = build_recipe_model(source_recipe)
    with torch.no_grad():
        flat.backbone.pos_embed.fill_(0.5)
    _, _, resampled, _ = _transfer(source_recipe, target_recipe, source_model=flat)
    assert torch.allclose(resampled["backbone.pos_embed"], torch.full((1, 48, 192), 0.5))
    assert "heads.people.deconv.0.weight" in report.kept_at_init
    assert "prototype_table.prototypes" in report.kept_at_init
    assert torch.equal(new["backbone.blocks.3.attn.qkv.weight"],
                       old["backbone.blocks.3.attn.qkv.weight"])


def test_another_backbone_or_moe_setting_is_one_clear_error():
    people = [("people", "coco")]
    with pytest.raises(PosebhError, match=r"shares no tensor .* model.backbone = 'small'"):
        _transfer(_recipe(people), _recipe(people, backbone="small", expert_dim=64))
    with pytest.raises(PosebhError, match=r"has MoE experts and this recipe sets model.moe = "
                                          r"false"):
        _transfer(_recipe(people), _recipe(people, moe=False))


def test_a_missing_or_corrupt_source_names_model_init_from(tmp_path):
    recipe = _recipe([("people", "coco")])
    model = build_recipe_model(recipe)
    with pytest.raises(PosebhError, match=r"^model.init_from: .*nowhere does not exist"):
        init_from_run(model, type_table_of(recipe), tmp_path / "nowhere")
    (tmp_path / "run").mkdir()
    with pytest.raises(PosebhError, match=r"^model.init_from: .*run: no model.safetensors"):
        init_from_run(model, type_table_of(recipe), tmp_path / "run")


def test_recipe_refuses_pretrained_and_init_from_together():
    with pytest.raises(PosebhError, match="model.pretrained and model.init_from are both set"):
        _recipe([("people", "coco")], pretrained="vit.pth", init_from="runs/x")
