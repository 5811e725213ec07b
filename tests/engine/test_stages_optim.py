"""Stage plan, LR schedule and optimizer groups against closed-form values (METHOD.md §4)."""

from __future__ import annotations

import math

import pytest
import torch
from engine_recipes import tiny_recipe

from posebh_cli.engine.build import build_recipe_model
from posebh_cli.engine.optim import (
    WARMUP_START_RATIO,
    LearningRateSchedule,
    apply_lr,
    build_optimizer,
    parameter_groups,
)
from posebh_cli.engine.stages import plan_stages, stage_at, standing_validation
from posebh_cli.recipe import OptimizerConfig, StageConfig


def test_plan_stages_mixes_epochs_and_steps():
    stages = (StageConfig("a", epochs=2.0), StageConfig("b", steps=5),
              StageConfig("c", epochs=0.3, train=("keypoint_heads",)),
              StageConfig("d", epochs=0.01))
    spans = plan_stages(stages, steps_per_epoch=10)
    assert [(s.index, s.start, s.end) for s in spans] == [(0, 0, 20), (1, 20, 25), (2, 25, 28),
                                                          (3, 28, 29)]  # >= 1 step per stage
    assert spans[2].frozen_parts == ("backbone", "embedding_head")
    assert spans[0].frozen_parts == ()
    assert [stage_at(spans, step).config.name for step in (0, 19, 20, 24, 25, 27, 28)] == \
        ["a", "a", "b", "b", "c", "c", "d"]
    assert stage_at(spans, 1000).config.name == "d"  # past the end: the last stage


def test_standing_validation_only_after_stages_that_train_nothing_the_decoder_reads():
    stages = (StageConfig("keypoints", steps=1, train=("backbone", "keypoint_heads")),
              StageConfig("learn", steps=1, train=("embedding_head",), prototypes="learn"),
              StageConfig("frozen", steps=1, train=(), prototypes="frozen"),
              StageConfig("css", steps=1, train=("keypoint_heads", "embedding_head"), css=True))
    done = {"keypoints"}
    assert standing_validation(stages, 0, "heads", done) is None  # nothing before it
    assert standing_validation(stages, 1, "heads", done) == "keypoints"
    assert standing_validation(stages, 1, "heads", set()) is None  # no result to keep
    assert standing_validation(stages, 2, "heads", {"keypoints", "learn"}) == "learn"
    assert standing_validation(stages, 3, "heads", {"keypoints", "learn", "frozen"}) is None
    # The prototype decoder reads the embedding head and the table: stage 1 changes both.
    assert standing_validation(stages, 1, "prototypes", done) is None
    assert standing_validation(stages, 2, "prototypes", {"keypoints", "learn"}) == "learn"


def test_warmup_ramp_stage_scale_and_step_decay():
    schedule = LearningRateSchedule(base_lr=1e-3, warmup_iters=10, step_epochs=(2.0, 4.0),
                                    step_factor=0.1)
    start = 1e-3 * WARMUP_START_RATIO
    assert schedule.lr(0, 0.0, 1.0) == pytest.approx(start)
    assert schedule.lr(5, 0.0, 1.0) == pytest.approx(start + (1e-3 - start) * 0.5)
    assert schedule.lr(9, 0.0, 1.0) == pytest.approx(start + (1e-3 - start) * 0.9)
    assert schedule.lr(10, 0.0, 1.0) == pytest.approx(1e-3)
    assert schedule.lr(5, 0.0, 0.3) == pytest.approx(0.3 * (start + (1e-3 - start) * 0.5))
    assert schedule.lr(100, 1.99, 1.0) == pytest.approx(1e-3)
    assert schedule.lr(100, 2.0, 1.0) == pytest.approx(1e-4)
    assert schedule.lr(100, 4.5, 0.5) == pytest.approx(0.5e-5)
    no_warmup = LearningRateSchedule.from_config(OptimizerConfig(lr=2e-3, warmup_iters=0))
    assert no_warmup.lr(0, 0.0, 1.0) == pytest.approx(2e-3)


def test_layer_wise_lr_and_weight_decay_groups():
    recipe = tiny_recipe(optimizer={"layer_decay": 0.5, "weight_decay": 0.05})
    model = build_recipe_model(recipe)
    depth = len(model.backbone.blocks)
    cfg = recipe.optimizer
    groups = parameter_groups(model, cfg, depth)
    mult, decay = {}, {}
    for group in groups:
        for name in group["names"]:
            assert name not in mult, f"{name} in two groups"
            mult[name], decay[name] = group["lr_mult"], group["weight_decay"]
    assert set(mult) == {name for name, _ in model.named_parameters()}
    top = depth + 1
    assert mult["backbone.patch_embed.proj.weight"] == pytest.approx(0.5 ** top)
    assert mult["backbone.pos_embed"] == pytest.approx(0.5 ** top)
    for i in range(depth):
        assert mult[f"backbone.blocks.{i}.attn.qkv.weight"] == pytest.approx(0.5 ** (depth - i))
    head_names = [n for n in mult if n.startswith(("heads.", "embedding_head."))]
    assert head_names and all(mult[n] == 1.0 for n in head_names)
    params = dict(model.named_parameters())
    for name, value in decay.items():
        no_decay = params[name].ndim <= 1 or name.endswith(".bias") or "pos_embed" in name
        assert value == (0.0 if no_decay else 0.05), name
    assert decay["backbone.pos_embed"] == 0.0 and params["backbone.pos_embed"].ndim == 3
    assert decay["backbone.blocks.0.norm1.weight"] == 0.0
    assert decay["backbone.blocks.0.attn.qkv.weight"] == 0.05

    optimizer = build_optimizer(model, cfg, depth)
    assert isinstance(optimizer, torch.optim.AdamW)
    apply_lr(optimizer, 1e-3)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(1e-3 * group["lr_mult"])
    assert math.isclose(min(g["lr"] for g in optimizer.param_groups), 1e-3 * 0.5 ** top)
    adam = build_optimizer(model, tiny_recipe(optimizer={"name": "adam"}).optimizer, depth)
    assert type(adam) is torch.optim.Adam


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_fused_optimizer_steps_like_the_per_tensor_one(name):
    # build_optimizer picks torch's fused kernel; three steps must match the plain per-tensor
    # loop (foreach=False, fused=False) over the same groups to rounding.
    recipe = tiny_recipe(optimizer={"name": name, "layer_decay": 0.5, "weight_decay": 0.05})
    torch.manual_seed(0)
    fused_model, plain_model = build_recipe_model(recipe), build_recipe_model(recipe)
    depth = len(fused_model.backbone.blocks)
    fused = build_optimizer(fused_model, recipe.optimizer, depth)
    assert all(group["fused"] for group in fused.param_groups)
    groups = parameter_groups(plain_model, recipe.optimizer, depth)
    for group in groups:
        group.pop("names")
    kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    plain = kind(groups, lr=recipe.optimizer.lr, betas=recipe.optimizer.betas, foreach=False,
                 fused=False)
    for optimizer in (fused, plain):
        apply_lr(optimizer, 1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        for (_, p), (_, q) in zip(fused_model.named_parameters(), plain_model.named_parameters(),
                                  strict=True):
            # Laid out like the parameter (channels-last convs), as autograd's gradients are.
            p.grad = torch.empty_like(p).copy_(torch.randn(p.shape, generator=generator))
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    for (n, p), (_, q) in zip(fused_model.named_parameters(), plain_model.named_parameters(),
                              strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)
    moved = fused_model.backbone.blocks[0].attn.qkv.weight
    assert not torch.equal(moved, build_recipe_model(recipe).backbone.blocks[0].attn.qkv.weight)
