"""One PoseBH training step's losses (METHOD.md §2-3), for the parts a stage enables.

    L = L_kpt + L_proto + L_phm (+ L_css from stage 2)

Prototype learning runs inside the step, without gradient, on the same similarities the
prototype losses use; all prototype and CSS maths run in fp32 (PERF.md: bf16 distorts e^(s/eps)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from posebh_cli.losses.css import CssInput, css_loss
from posebh_cli.losses.keypoint import multi_head_keypoint_loss
from posebh_cli.losses.prototype import prototype_heatmap_loss, prototype_loss
from posebh_cli.models.norm_statistics import batch_statistics_only
from posebh_cli.models.posebh import PoseBHModel, select_samples
from posebh_cli.models.prototype_learning import DatasetPixels, learn_prototypes
from posebh_cli.models.prototypes import similarity_to_heatmaps
from posebh_cli.recipe import LossConfig, PrototypeConfig, StageConfig


@dataclass(frozen=True)
class StepSettings:
    """What the current stage asks of a step."""

    stage: StageConfig
    loss: LossConfig
    prototypes: PrototypeConfig
    head_weights: Mapping[str, float] = field(default_factory=dict)  # dataset -> loss_weight

    @property
    def uses_prototypes(self) -> bool:
        return ("embedding_head" in self.stage.train or self.stage.prototypes == "learn"
                or self.stage.css)


@dataclass
class StepOutput:
    loss: Tensor  # () the total to backpropagate
    terms: dict[str, Tensor]  # () each, detached, for logging
    new_prototypes: Tensor | None  # (J, M, F) to copy into the table after the step


def compute_losses(
    model: PoseBHModel,
    images: Tensor,
    batch: dict[str, Tensor],
    groups: list[Tensor],
    settings: StepSettings,
    *,
    autocast_dtype: torch.dtype | None,
    sinkhorn_seed: int | None = None,
    process_group=None,
) -> StepOutput:
    """images: (B, 3, H, W) normalised; batch: collated targets on the model's device;
    groups: per-dataset (B_d,) sample indices (CPU) from the batch's dataset_idx."""
    device = images.device
    dataset_idx = batch["dataset_idx"]
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                        enabled=autocast_dtype is not None):
        out = model(images, dataset_idx, groups,
                    with_embeddings=settings.uses_prototypes)
    target_heatmaps, target_weights = batch["heatmaps"], batch["weights"]
    heatmaps = {name: hm.float() for name, hm in out["heatmaps"].items()}
    kpt, per_head = multi_head_keypoint_loss(heatmaps, out["sample_indices"], target_heatmaps,
                                             target_weights, kind=settings.loss.keypoint,
                                             head_weights=settings.head_weights)
    kpt = settings.loss.keypoint_weight * kpt
    terms = {"kpt": kpt.detach()}
    for name, value in per_head.items():
        terms[f"kpt/{name}"] = value.detach()
    total = kpt
    new_prototypes = None
    table = model.prototype_table
    if settings.uses_prototypes and table is not None and out["embeddings"] is not None:
        embeddings = out["embeddings"].float()
        cfg, loss_cfg = settings.prototypes, settings.loss
        pixel_groups, similarities, phm_terms = [], [], []
        for d, name in enumerate(model.dataset_names):
            if name not in out["sample_indices"]:
                continue
            index = out["sample_indices"][name]
            k = model.heads[name].num_keypoints
            emb_d = select_samples(embeddings, index)  # (B_d, F, H, W)
            similarity = table.similarity(emb_d, model.type_ids(d))
            hm_d, w_d = target_heatmaps[index, :k], target_weights[index, :k]
            similarities.append(similarity)
            pixel_groups.append(DatasetPixels(int(model.type_offsets[d]), similarity, emb_d,
                                              hm_d, w_d))
            phm_terms.append(prototype_heatmap_loss(
                similarity_to_heatmaps(similarity), hm_d, w_d,
                scale=loss_cfg.prototype_heatmap_weight))
        learn = settings.stage.prototypes == "learn"
        learned = learn_prototypes(
            table.prototypes, pixel_groups, update=learn, eps=cfg.eps, iters=cfg.iters,
            tau=cfg.gumbel_tau, momentum=cfg.momentum, seed=sinkhorn_seed,
            backend=cfg.backend, process_group=process_group)
        if learn:
            new_prototypes = learned.prototypes
        proto = prototype_loss(similarities, learned.targets, scale=loss_cfg.prototype_scale,
                               ppc_weight=loss_cfg.ppc_weight, ppd_weight=loss_cfg.ppd_weight)
        phm = torch.stack(phm_terms).sum()
        total = total + proto.total + phm
        terms.update(proto=proto.total.detach(), ppc=proto.ppc.detach(), ppd=proto.ppd.detach(),
                     phm=phm.detach(), pixels_kept=learned.pixels_kept.float())
        if settings.stage.css:
            css = _css_term(model, out, embeddings, settings, sinkhorn_seed, autocast_dtype)
            if css is not None:
                total = total + css.total
                terms.update(css=css.total.detach(), css_keypoints=css.pseudo_keypoints.float())
    terms["loss"] = total.detach()
    return StepOutput(total, terms, new_prototypes)


def _css_term(model: PoseBHModel, out: dict, embeddings: Tensor, settings: StepSettings,
              seed: int | None, autocast_dtype: torch.dtype | None):
    """Head d on the batch's samples from the other datasets (METHOD.md §3, from stage 2)."""
    features, present = out["features"], out["sample_indices"]
    if len(present) < 2:
        return None  # CSS needs images of another dataset than the head's own
    inputs = []
    for d, name in enumerate(model.dataset_names):
        others = [index for other, index in present.items() if other != name]
        if not others:
            continue
        index = torch.cat(others)
        # Head d's BN running statistics stay those of its own dataset (norm_statistics.py).
        with torch.autocast(features.device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None), \
                batch_statistics_only(model.heads[name]):
            head = model.run_head(d, select_samples(features, index)).float()
        emb = select_samples(embeddings, index)
        similarity = model.prototype_table.similarity(emb, model.type_ids(d))
        decoded = model.heads[name].to_heatmaps(head.detach())
        inputs.append(CssInput(int(model.type_offsets[d]), head, similarity, emb, decoded))
    loss_cfg, proto_cfg = settings.loss, settings.prototypes
    return css_loss(
        inputs, model.prototype_table.prototypes, keypoint_loss=loss_cfg.keypoint,
        scale=loss_cfg.css_scale, threshold=loss_cfg.css_threshold,
        max_distance=loss_cfg.css_match_distance, sigma=loss_cfg.sigma,
        phm_weight=loss_cfg.prototype_heatmap_weight, prototype_scale=loss_cfg.prototype_scale,
        ppc_weight=loss_cfg.ppc_weight, ppd_weight=loss_cfg.ppd_weight, sinkhorn_seed=seed,
        backend=proto_cfg.backend, eps=proto_cfg.eps, iters=proto_cfg.iters,
        tau=proto_cfg.gumbel_tau)
