"""Import of ViTPose / ViTPose++ / PoseBH mmpose checkpoints: safe loading, key mapping, the
imported model against a reference forward on the raw tensors, and the run directory."""

from __future__ import annotations

import json
import os

import pytest
import torch
from _mmpose_synthetic import (
    MICRO,
    make_state,
    reference_backbone,
    reference_embedding,
    reference_head,
    save_checkpoint,
    use_micro_arch,
)

from posebh_cli.errors import PosebhError
from posebh_cli.io.mmpose_import import (
    convert_state_dict,
    fold_pos_embed,
    read_layout,
    resolve_arch,
)
from posebh_cli.io.mmpose_run import import_checkpoint, load_mmpose_model, parse_datasets
from posebh_cli.io.safe_checkpoint import (
    UnresolvedGlobal,
    extract_state_dict,
    load_checkpoint_object,
)

SMALL = ["model.input_size=[64,48]"]  # 4x3 tokens: the fixture's grid
HEADS = MICRO["num_heads"]


@pytest.fixture(autouse=True)
def _micro_backbone(monkeypatch):
    use_micro_arch(monkeypatch)  # "tiny" = width 64, depth 2: the fixture's backbone


class CustomMeta:
    """Stands for the mmcv objects (Config, hooks) found in real checkpoints' meta."""

    def __init__(self) -> None:
        self.lr = 0.001
        self.hooks = ["a", "b"]


class ConfigLikeDict(dict):
    """A dict subclass (mmcv ConfigDict): pickled with SETITEMS on an object we do not import."""


class RunsShell:
    """Unpickling this runs `os.system(command)` when a loader executes pickles."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class RunsEval:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def posebh_state():
    return make_state(keypoints=(17, 16, 17), experts=3, proto=(3, 8, 16))


@pytest.fixture(scope="module")
def posebh_file(tmp_path_factory, posebh_state):
    path = tmp_path_factory.mktemp("ckpt") / "posebh_tiny.pth"
    save_checkpoint(path, posebh_state, meta={"epoch": 100, "config": CustomMeta()})
    return path


# ----------------------------------------------------------------------------- safe loading


def test_plain_checkpoint_loads_with_weights_only(tmp_path):
    state = make_state(depth=1, keypoints=(17,))
    path = tmp_path / "plain.pth"
    save_checkpoint(path, state, meta={"epoch": 3, "time": "x"})
    obj = load_checkpoint_object(path)
    assert obj["meta"] == {"epoch": 3, "time": "x"}
    loaded = extract_state_dict(obj, str(path))
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("zip_format", [True, False])
def test_meta_objects_become_placeholders(tmp_path, zip_format):
    state = make_state(depth=1, keypoints=(17,))
    config = ConfigLikeDict(lr=0.1, steps=[1, 2])
    meta = {"config": CustomMeta(), "cfg_dict": config, "param": torch.nn.Parameter(
        torch.ones(2))}
    path = tmp_path / "meta.pth"
    save_checkpoint(path, state, meta=meta, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(Exception, match="(?i)weights only"):
        torch.load(path, weights_only=True)  # what forces the restricted path
    obj = load_checkpoint_object(path)
    assert isinstance(obj["meta"]["config"], UnresolvedGlobal)
    assert obj["meta"]["config"].origin.endswith("CustomMeta")
    assert obj["meta"]["config"].state == {"lr": 0.001, "hooks": ["a", "b"]}
    assert obj["meta"]["cfg_dict"].items == {"lr": 0.1, "steps": [1, 2]}
    assert torch.equal(obj["meta"]["param"], torch.ones(2))
    loaded = extract_state_dict(obj, str(path))
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_pickled_code_is_never_executed(tmp_path):
    shell_marker = tmp_path / "shell_ran"
    eval_marker = tmp_path / "eval_ran"
    state = make_state(depth=1, keypoints=(17,))
    path = tmp_path / "evil.pth"
    save_checkpoint(path, state, meta={"x": RunsShell(f"touch {shell_marker}"),
                                       "y": RunsEval(str(eval_marker))})
    obj = load_checkpoint_object(path)
    assert not shell_marker.exists() and not eval_marker.exists()
    assert isinstance(obj["meta"]["x"], UnresolvedGlobal)
    assert obj["meta"]["x"].args == (f"touch {shell_marker}",)
    assert len(extract_state_dict(obj, str(path))) == len(state)


def test_not_a_checkpoint_is_a_user_error(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(PosebhError, match="notes.pth: not a PyTorch checkpoint"):
        load_checkpoint_object(text)
    with pytest.raises(PosebhError, match="missing.pth does not exist"):
        load_checkpoint_object(tmp_path / "missing.pth")
    listing = tmp_path / "list.pth"
    torch.save([torch.ones(1)], listing)
    with pytest.raises(PosebhError, match="list.pth: not an mmpose checkpoint"):
        extract_state_dict(load_checkpoint_object(listing), str(listing))
    no_state = tmp_path / "optim.pth"
    torch.save({"meta": {}, "optimizer": {"lr": torch.ones(1)}}, no_state)
    with pytest.raises(PosebhError, match=r"optim.pth: .*'state_dict'.*\['meta', 'optimizer'\]"):
        extract_state_dict(load_checkpoint_object(no_state), str(no_state))
    bad_value = tmp_path / "bad.pth"
    torch.save({"state_dict": {"backbone.x": 3}}, bad_value)
    with pytest.raises(PosebhError, match="'backbone.x' is not a named tensor"):
        extract_state_dict(load_checkpoint_object(bad_value), str(bad_value))


def test_ddp_prefix_is_stripped():
    state = {"module.backbone.pos_embed": torch.zeros(1, 2, 3)}
    assert list(extract_state_dict({"state_dict": state}, "f")) == ["backbone.pos_embed"]


# ----------------------------------------------------------------------------- layout


def test_layout_of_the_posebh_fixture(posebh_state):
    layout = read_layout(posebh_state, "f")
    assert (layout.embed_dim, layout.depth, layout.patch_size) == (64, 2, 16)
    assert layout.grid == (4, 3) and layout.pos_embed_slot
    assert (layout.num_experts, layout.expert_dim) == (3, 16)
    assert layout.head_keypoints == (17, 16, 17)
    assert (layout.head_channels, layout.head_deconvs) == (16, 2)
    assert layout.prototypes == (50, 3, 8) and layout.embed_head_channels == 16
    assert layout.kind == "posebh"
    assert layout.input_size == (64, 48) and layout.heatmap_size == (16, 12)


def test_layout_of_plain_vitpose_and_reference_grid():
    state = make_state(depth=2, grid=(16, 12), keypoints=(17,))
    layout = read_layout(state, "f")
    assert layout.kind == "vitpose" and layout.num_experts == 0
    assert layout.input_size == (256, 192) and layout.heatmap_size == (64, 48)


def test_layout_errors_name_the_key():
    state = make_state(depth=1, experts=2, keypoints=(17, 16))
    state["backbone.blocks.0.mlp.fc2.weight"] = torch.zeros(64, 256)
    with pytest.raises(PosebhError, match="fc2 has 64 output rows; expected 48"):
        read_layout(state, "f")
    odd = make_state(depth=1, grid=(5, 5), keypoints=(17,))
    with pytest.raises(PosebhError, match="26 tokens.*--set model.input_size"):
        read_layout(odd, "f")
    assert read_layout(odd, "f", input_size=(80, 80)).grid == (5, 5)
    missing = make_state(depth=1, keypoints=(17,))
    del missing["backbone.pos_embed"]
    with pytest.raises(PosebhError, match="'backbone.pos_embed' is missing"):
        read_layout(missing, "f")


def test_arch_is_inferred_and_checked(posebh_state):
    layout = read_layout(posebh_state, "f")
    assert resolve_arch(None, layout, "f") == "tiny"
    assert resolve_arch("tiny", layout, "f") == "tiny"
    with pytest.raises(PosebhError, match="width 64, depth 2, base has width 768.*--arch tiny"):
        resolve_arch("vitb", layout, "f")
    with pytest.raises(PosebhError, match="--arch vitz: unknown"):
        resolve_arch("vitz", layout, "f")


def test_dataset_names_follow_heads(posebh_state):
    layout = read_layout(posebh_state, "f")
    assert parse_datasets("coco,mpii,ap10k", layout, "f") == [
        ("coco", "coco"), ("mpii", "mpii"), ("ap10k", "ap10k")]
    assert parse_datasets("a:coco,b:mpii,c:apt36k", layout, "f")[2] == ("c", "apt36k")
    with pytest.raises(PosebhError, match="3 keypoint heads; name their datasets"):
        parse_datasets(None, layout, "f")
    with pytest.raises(PosebhError, match="2 names for the file's 3 keypoint heads"):
        parse_datasets("coco,mpii", layout, "f")
    with pytest.raises(PosebhError, match="associate_keypoint_heads.0 predicts 16 keypoints but "
                                          "dataset 'aic' uses skeleton 'aic' with 14"):
        parse_datasets("coco,aic,ap10k", layout, "f")
    plain = read_layout(make_state(depth=1, keypoints=(17,)), "f")
    assert parse_datasets(None, plain, "f") == [("coco", "coco")]


# ----------------------------------------------------------------------------- mapping


def test_pos_embed_slot_is_folded_not_dropped():
    pos = torch.arange(2 * 1 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)[:1]
    folded = fold_pos_embed(pos, True)
    assert folded.shape == (1, 4, 3)
    assert torch.equal(folded, pos[:, 1:] + pos[:, :1])
    assert torch.equal(fold_pos_embed(pos, False), pos)


def test_experts_are_stacked_in_order_and_heads_named(posebh_state):
    layout = read_layout(posebh_state, "f")
    converted = convert_state_dict(posebh_state, layout, ["coco", "mpii", "ap10k"])
    weight = converted.tensors["backbone.blocks.1.mlp.expert_weight"]
    assert weight.shape == (3, 16, 256)
    for e in range(3):
        assert torch.equal(weight[e], posebh_state[f"backbone.blocks.1.mlp.experts.{e}.weight"])
    assert torch.equal(converted.tensors["heads.mpii.final.weight"],
                       posebh_state["associate_keypoint_heads.0.final_layer.weight"])
    assert torch.equal(converted.tensors["heads.coco.deconv.4.running_var"],
                       posebh_state["keypoint_head.deconv_layers.4.running_var"])
    assert torch.equal(converted.tensors["backbone.norm.weight"],
                       posebh_state["backbone.last_norm.weight"])
    # conv bias before BN folded into its running mean
    assert torch.equal(converted.tensors["embedding_head.res.body.1.running_mean"],
                       posebh_state["proto_head.neck.bn1.running_mean"]
                       - posebh_state["proto_head.neck.conv1.bias"])
    assert sorted(converted.folded) == ["proto_head.head.0.bias", "proto_head.neck.conv1.bias",
                                        "proto_head.neck.conv2.bias"]
    assert converted.unmapped == []


def _check_against_reference(model, state, names, num_heads, with_embedding):
    model = model.double().eval()
    state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(5, 3, 64, 48, generator=generator, dtype=torch.float64)
    dataset_idx = torch.tensor([0, len(names) - 1, 0, len(names) - 1, 0])
    with torch.no_grad():
        out = model(images, dataset_idx)
    features = reference_backbone(state, images, dataset_idx, num_heads)
    torch.testing.assert_close(out["features"], features, rtol=0, atol=1e-10)
    for i, name in enumerate(names):
        if name not in out["heatmaps"]:
            continue
        index = out["sample_indices"][name]
        expected = reference_head(state, i, features[index])
        assert expected.abs().max() > 0.1  # non-trivial outputs
        torch.testing.assert_close(out["heatmaps"][name], expected, rtol=0, atol=1e-10)
    if with_embedding:
        torch.testing.assert_close(out["embeddings"], reference_embedding(state, features),
                                   rtol=0, atol=1e-10)


def test_imported_posebh_model_equals_reference_forward(posebh_file, posebh_state):
    imported = load_mmpose_model(posebh_file, datasets="coco,mpii,ap10k", overrides=SMALL)
    assert imported.unmapped == [] and imported.initialised == [] and imported.notes == []
    table = imported.model.prototype_table.prototypes
    torch.testing.assert_close(table, posebh_state["proto_head.kpt_prototype.prototypes"],
                               rtol=0, atol=0)
    _check_against_reference(imported.model, posebh_state, ["coco", "mpii", "ap10k"], HEADS, True)


def test_imported_plain_vitpose_equals_reference_forward(tmp_path):
    state = make_state(keypoints=(17,), seed=5)
    path = tmp_path / "vitpose_tiny.pth"
    save_checkpoint(path, state)
    imported = load_mmpose_model(path, arch="tiny", overrides=SMALL)
    assert imported.layout.kind == "vitpose"
    assert imported.model.backbone.config.num_experts == 0
    # no proto_head: the embedding head and prototype table keep the seeded init, reported
    assert any(k.startswith("embedding_head.") for k in imported.initialised)
    assert "prototype_table.prototypes" in imported.initialised
    _check_against_reference(imported.model, state, ["coco"], HEADS, False)


def test_other_proto_neck_leaves_embedding_head_at_init(tmp_path):
    state = make_state(keypoints=(17, 16), experts=2, proto=(3, 8, 16), proto_neck="res2",
                       seed=2)
    state["proto_head.cluster_prototype.prototypes"] = torch.zeros(4, 3, 8)
    path = tmp_path / "res2.pth"
    save_checkpoint(path, state)
    imported = load_mmpose_model(path, datasets="coco,mpii", overrides=SMALL)
    assert imported.notes and "embedding head left at init" in imported.notes[0]
    assert "proto_head.neck.0.conv1.weight" in imported.unmapped
    assert "proto_head.deconv_layers.0.weight" in imported.unmapped
    assert "proto_head.cluster_prototype.prototypes" in imported.unmapped
    assert "embedding_head.deconv.0.weight" in imported.initialised
    torch.testing.assert_close(imported.model.prototype_table.prototypes,
                               state["proto_head.kpt_prototype.prototypes"], rtol=0, atol=0)


def test_incomplete_backbone_is_a_user_error(tmp_path):
    state = make_state(keypoints=(17,))
    del state["backbone.blocks.1.attn.proj.weight"]
    path = tmp_path / "cut.pth"
    save_checkpoint(path, state)
    with pytest.raises(PosebhError, match="no tensor for 'backbone.blocks.1.attn.proj.weight'"):
        load_mmpose_model(path, arch="tiny", overrides=SMALL)


def test_prototype_count_must_match_datasets(tmp_path):
    state = make_state(keypoints=(17, 16), experts=2, proto=(3, 8, 16))
    state["proto_head.kpt_prototype.prototypes"] = torch.zeros(40, 3, 8)
    path = tmp_path / "proto.pth"
    save_checkpoint(path, state)
    with pytest.raises(PosebhError, match="40 keypoint types but the datasets .* have 33"):
        load_mmpose_model(path, datasets="coco,mpii", overrides=SMALL)


# ----------------------------------------------------------------------------- run directory


def test_import_writes_a_run_dir_that_reloads_exactly(tmp_path, posebh_file, posebh_state):
    from posebh_cli.engine.build import build_recipe_model
    from posebh_cli.io.checkpoint import load_run_info, load_weights_into
    from posebh_cli.recipe import load_recipe

    run = tmp_path / "runs" / "posebh_tiny"
    import_checkpoint(posebh_file, run, datasets="coco,mpii,ap10k", overrides=SMALL)
    info = load_run_info(run / "run.json")
    assert info["format"] == "posebh-1" and info["step"] == 0 and info["stage"] == "imported"
    assert info["imported_from"] == str(posebh_file.resolve())
    assert info["import"]["kind"] == "posebh" and info["import"]["unmapped"] == []
    assert [d["name"] for d in info["datasets"]] == ["coco", "mpii", "ap10k"]
    assert [d["num_keypoints"] for d in info["datasets"]] == [17, 16, 17]
    assert info["datasets"][0]["encoding"] == "udp"  # reference defaults (METHOD.md §4)
    assert info["prototypes"] == {"shape": [50, 3, 8], "tensor": "prototype_table.prototypes"}
    assert info["keypoint_types"]["offsets"] == [0, 17, 33, 50]
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()
    recipe = load_recipe(run / "recipe.resolved.toml")
    assert recipe.model.backbone == "tiny" and recipe.model.expert_dim == 16
    assert recipe.dataset("coco").val is not None
    model = build_recipe_model(recipe)
    load_weights_into(model, run / "model.safetensors")
    _check_against_reference(model, posebh_state, ["coco", "mpii", "ap10k"], HEADS, True)
    with pytest.raises(PosebhError, match="already holds a run; pass --force"):
        import_checkpoint(posebh_file, run, datasets="coco,mpii,ap10k", overrides=SMALL)
    assert json.loads((run / "run.json").read_text())["step"] == 0
