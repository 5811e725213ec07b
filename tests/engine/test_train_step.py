"""A full PoseBH step on a hand-made 3-dataset batch: finite terms that add up (METHOD §2-3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from engine_recipes import tiny_recipe

from posebh_cli.codecs.encode import encode
from posebh_cli.engine.build import build_recipe_model
from posebh_cli.engine.train_step import StepSettings, compute_losses
from posebh_cli.models.posebh import group_samples_by_dataset
from posebh_cli.recipe import StageConfig

DATASET_OF_SAMPLE = (0, 1, 2, 0, 1, 2)


def _batch(model, recipe, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images and Gaussian targets of random keypoints, some of them unlabelled."""
    rng = np.random.default_rng(seed)
    (in_h, in_w), hm_size = recipe.model.input_size, recipe.model.heatmap_size
    k_max = max(head.num_keypoints for head in model.heads.values())
    heatmaps = torch.zeros(len(DATASET_OF_SAMPLE), k_max, *hm_size)
    weights = torch.zeros(len(DATASET_OF_SAMPLE), k_max)
    for i, d in enumerate(DATASET_OF_SAMPLE):
        k = model.heads[model.dataset_names[d]].num_keypoints
        xy = rng.uniform([4, 4], [in_w - 4, in_h - 4], size=(k, 2))
        visible = rng.random(k) > 0.2
        hm, w = encode(xy, visible, (in_h, in_w), tuple(hm_size), sigma=recipe.loss.sigma,
                       method="udp")
        heatmaps[i, :k], weights[i, :k] = torch.from_numpy(hm), torch.from_numpy(w)
    images = torch.from_numpy(rng.normal(0, 1, (len(DATASET_OF_SAMPLE), 3, in_h, in_w))).float()
    return {"images": images, "heatmaps": heatmaps, "weights": weights,
            "dataset_idx": torch.tensor(DATASET_OF_SAMPLE)}


def _step(model, recipe, stage: StageConfig, loss=None, head_weights=None):
    batch = _batch(model, recipe)
    groups = group_samples_by_dataset(batch["dataset_idx"], len(model.heads))
    settings = StepSettings(stage, loss or recipe.loss, recipe.prototypes, head_weights or {})
    model.set_frozen([p for p in ("backbone", "keypoint_heads", "embedding_head")
                      if p not in stage.train])
    return compute_losses(model, batch["images"], batch, groups, settings, autocast_dtype=None,
                          sinkhorn_seed=7)


@pytest.fixture(scope="module")
def recipe():
    return tiny_recipe(model={"drop_path": 0.0})  # no random masks: steps compare exactly


def test_full_step_terms_are_finite_and_add_up(recipe):
    torch.manual_seed(0)
    model = build_recipe_model(recipe).train()
    # css_threshold 0 keeps every pseudo label of the untrained heads, so L_css is not 0.
    loss_cfg = dataclasses.replace(recipe.loss, css_threshold=0.0)
    out = _step(model, recipe, StageConfig("all", steps=1, prototypes="learn", css=True),
                loss_cfg)
    terms = out.terms
    assert {"loss", "kpt", "proto", "ppc", "ppd", "phm", "css"} <= set(terms)
    assert all(torch.isfinite(v).all() for v in terms.values()), terms
    assert float(terms["css"]) > 0 and float(terms["css_keypoints"]) > 0
    assert float(terms["ppc"]) > 0 and float(terms["phm"]) > 0
    total = terms["kpt"] + terms["proto"] + terms["phm"] + terms["css"]
    torch.testing.assert_close(out.loss.detach(), total, rtol=1e-6, atol=0)
    torch.testing.assert_close(terms["loss"], total, rtol=1e-6, atol=0)
    heads = sum(terms[f"kpt/{name}"] for name in model.dataset_names)
    torch.testing.assert_close(terms["kpt"], recipe.loss.keypoint_weight * heads)
    cfg = recipe.loss
    torch.testing.assert_close(terms["proto"], cfg.prototype_scale * (
        cfg.ppc_weight * terms["ppc"] + cfg.ppd_weight * terms["ppd"]))

    out.loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trainable), \
        [n for n, p in trainable if p.grad is None]
    table = model.prototype_table.prototypes
    assert out.new_prototypes is not None and out.new_prototypes.shape == table.shape
    assert not torch.equal(out.new_prototypes, table)  # learned, not yet copied into the table
    torch.testing.assert_close(out.new_prototypes.norm(dim=-1),
                               torch.ones(table.shape[:2]), rtol=0, atol=1e-5)


def test_frozen_prototypes_and_keypoint_only_stage(recipe):
    torch.manual_seed(0)
    model = build_recipe_model(recipe).train()
    frozen = _step(model, recipe, StageConfig("css", steps=1, prototypes="frozen", css=True))
    assert frozen.new_prototypes is None
    assert torch.isfinite(frozen.loss)

    plain = _step(model, recipe, StageConfig("kpt", steps=1, prototypes="frozen",
                                             train=("backbone", "keypoint_heads")))
    assert set(plain.terms) == {"kpt", "loss"} | {f"kpt/{n}" for n in model.dataset_names}
    torch.testing.assert_close(plain.loss.detach(), plain.terms["kpt"])
    # The same images and targets give the same keypoint term whatever the stage adds.
    torch.testing.assert_close(plain.terms["kpt"], frozen.terms["kpt"])

    first, *rest = model.dataset_names
    weighted = _step(model, recipe, StageConfig("kpt", steps=1, prototypes="frozen",
                                                train=("backbone", "keypoint_heads")),
                     head_weights={first: 3.0})  # the recipe's per-dataset loss_weight
    heads = 3.0 * plain.terms[f"kpt/{first}"] + sum(plain.terms[f"kpt/{n}"] for n in rest)
    torch.testing.assert_close(weighted.terms["kpt"], recipe.loss.keypoint_weight * heads)
    torch.testing.assert_close(weighted.terms[f"kpt/{first}"], plain.terms[f"kpt/{first}"])


def test_both_sinkhorn_passes_use_the_recipes_settings(recipe, monkeypatch):
    # The step's own pass (prototype learning) and CSS's pass (pseudo-label targets) must both
    # solve with [prototypes] eps / iters / gumbel_tau, not the library defaults.
    from posebh_cli.engine import train_step as step_module
    from posebh_cli.losses import css as css_module

    seen = []

    def spy(real):
        def wrapped(*args, **kwargs):
            seen.append({k: kwargs[k] for k in ("eps", "iters", "tau", "update")})
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(step_module, "learn_prototypes", spy(step_module.learn_prototypes))
    monkeypatch.setattr(css_module, "learn_prototypes", spy(css_module.learn_prototypes))
    custom = dataclasses.replace(recipe, prototypes=dataclasses.replace(
        recipe.prototypes, eps=0.2, iters=5, gumbel_tau=0.7))
    torch.manual_seed(0)
    model = build_recipe_model(custom).train()
    _step(model, custom, StageConfig("all", steps=1, prototypes="learn", css=True))
    assert seen == [{"eps": 0.2, "iters": 5, "tau": 0.7, "update": True},
                    {"eps": 0.2, "iters": 5, "tau": 0.7, "update": False}]


def test_css_pass_leaves_the_heads_running_statistics_to_their_own_dataset(recipe):
    # CSS runs head d on the other datasets' samples; its BN running mean / var (what evaluation
    # normalises with) must come from the main pass over d's own samples only.
    import copy

    torch.manual_seed(0)
    model = build_recipe_model(recipe).train()
    twin = copy.deepcopy(model)
    with_css = StageConfig("css", steps=1, prototypes="frozen", css=True,
                           train=("keypoint_heads", "embedding_head"))
    without = dataclasses.replace(with_css, css=False)
    out = _step(model, recipe, with_css, dataclasses.replace(recipe.loss, css_threshold=0.0))
    assert float(out.terms["css_keypoints"]) > 0  # the CSS pass did run the heads
    _step(twin, recipe, without)
    for (name, buffer), (_, expected) in zip(model.heads.named_buffers(),
                                             twin.heads.named_buffers(), strict=True):
        torch.testing.assert_close(buffer, expected, rtol=0, atol=0, msg=name)
    fresh = build_recipe_model(recipe).heads
    moved = [n for (n, b), (_, b0) in zip(model.heads.named_buffers(), fresh.named_buffers())
             if n.endswith("running_mean") and not torch.equal(b, b0)]
    assert moved  # the main pass still updates them
