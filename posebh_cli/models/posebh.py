"""The composed PoseBH model: ViT backbone, one heatmap head per dataset, embedding head and
prototype table (METHOD.md §1).

`build_model(model_cfg, datasets)` reads these attributes of `model_cfg` (the recipe's model
section): backbone (tiny/small/base/large/huge), input_size (H, W), heatmap_size (h, w),
patch_size, stem_channels (() = the patch conv), pos_embed_init, moe (bool), expert_dim (P; None
or 0 = the arch default), drop_path (None = the arch default), head_channels, head_deconvs,
embed_head_channels, embedding_dim (F; 0 = no embedding head and no prototypes, a plain ViTPose++
model), prototypes_per_type (M), seed.
`head_softmax_sigma`: the target sigma of heads trained with the softmax-CE keypoint loss (their
outputs are logits), None for MSE heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from posebh_cli.errors import PosebhError
from posebh_cli.models.heads import EmbeddingHead, HeatmapHead
from posebh_cli.models.prototypes import PrototypeTable
from posebh_cli.models.vit import PoseViT, ViTConfig

MODEL_PARTS = ("backbone", "keypoint_heads", "embedding_head")


def group_samples_by_dataset(dataset_idx: Tensor, num_datasets: int) -> list[Tensor]:
    """(B,) dataset index -> per dataset the (B_d,) sample indices, on dataset_idx's device.

    Pass a CPU tensor (the loader's) to avoid a device sync; the result is moved by the caller.
    """
    order = torch.arange(dataset_idx.shape[0], device=dataset_idx.device)
    return [order[dataset_idx == d] for d in range(num_datasets)]


def contiguous_group_sizes(groups: Sequence[Tensor]) -> tuple[int, ...] | None:
    """Per-dataset sample indices (CPU tensors, as group_samples_by_dataset gives) -> the run
    lengths when the batch is sorted by dataset (groups[0] = 0..n0-1, groups[1] = n0.., ...),
    else None."""
    sizes = tuple(int(g.numel()) for g in groups)
    start = 0
    for group, size in zip(groups, sizes, strict=True):
        if size and (int(group[0]) != start or int(group[-1]) != start + size - 1):
            return None  # each group is increasing, so its ends decide contiguity
        start += size
    return sizes


def select_samples(maps: Tensor, index: Tensor) -> Tensor:
    """maps (B, C, h, w)[index] -> (B', C, h, w), in channels-last memory when `maps` is.

    index_select alone returns the usual (NCHW) layout: the next conv would convert it back, and
    per-pixel reductions over C (the prototype similarity) run ~6x slower across channel planes.
    """
    if maps.dim() == 4 and maps.is_contiguous(memory_format=torch.channels_last):
        return maps.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
    return maps.index_select(0, index)


class PoseBHModel(nn.Module):
    """Backbone -> per-dataset heatmap heads and (optionally) the embedding head.

    type_offsets: (D,) global id of each dataset's first keypoint type, in heads order.
    """

    type_offsets: Tensor

    def __init__(
        self,
        backbone: PoseViT,
        heads: nn.ModuleDict,
        embedding_head: EmbeddingHead | None,
        prototype_table: PrototypeTable | None,
        type_offsets: Sequence[int] | Tensor,
    ) -> None:
        super().__init__()
        if len(type_offsets) != len(heads):
            raise ValueError(f"{len(type_offsets)} type offsets for {len(heads)} heads")
        self.backbone = backbone
        self.heads = heads
        self.embedding_head = embedding_head
        self.prototype_table = prototype_table
        self.register_buffer(
            "type_offsets", torch.as_tensor(list(map(int, type_offsets)), dtype=torch.int64),
            persistent=False,
        )
        self.frozen: set[str] = set()
        # Head convolutions in channels-last (NHWC) order, oneDNN's and cuDNN's fast layout: on
        # 2 CPU cores a 64 -> 64 deconv (batch 64, 16x12 -> 32x24) runs forward + backward in
        # 18 ms instead of 32 ms. The ViT's (B, N, D) tokens already are a channels-last
        # (B, D, h, w) map, so no copy feeds the heads.
        heads.to(memory_format=torch.channels_last)
        if embedding_head is not None:
            embedding_head.to(memory_format=torch.channels_last)

    @property
    def dataset_names(self) -> list[str]:
        return list(self.heads.keys())

    def type_ids(self, dataset_index: int) -> Tensor:
        """(K_d,) global type ids of a dataset's keypoints."""
        head = self.heads[self.dataset_names[dataset_index]]
        start = int(self.type_offsets[dataset_index])
        return torch.arange(start, start + head.num_keypoints, device=self.type_offsets.device)

    def dataset_features(self, images: Tensor, dataset_index: int) -> Tensor:
        """Backbone features (B, D, h, w) of images (B, 3, H, W) all from one dataset (the MoE
        experts run as one row slice)."""
        batch = images.shape[0]
        dataset_idx = torch.full((batch,), dataset_index, dtype=torch.int64, device=images.device)
        sizes = tuple(batch if d == dataset_index else 0 for d in range(len(self.heads)))
        return self.backbone(images, dataset_idx, sizes)

    def run_head(self, dataset_index: int, features: Tensor) -> Tensor:
        """Head of dataset `dataset_index` on any features (B', D, h, w) -> (B', K_d, H, W),
        as the keypoint loss sees it (logits for a softmax-CE head; see HeatmapHead)."""
        return self.heads[self.dataset_names[dataset_index]](features)

    def head_heatmaps(self, dataset_index: int, features: Tensor) -> Tensor:
        """Decode-ready heatmaps (B', K_d, H, W) fp32 of a head (HeatmapHead.to_heatmaps)."""
        return self.heads[self.dataset_names[dataset_index]].heatmaps(features)

    def forward(
        self,
        images: Tensor,
        dataset_idx: Tensor,
        sample_groups: Sequence[Tensor] | None = None,
        with_embeddings: bool = True,
    ) -> dict[str, Any]:
        """images: (B, 3, H, W); dataset_idx: (B,) int64.

        sample_groups: optional per-dataset sample indices (see group_samples_by_dataset);
        computed here otherwise (one small device-to-host copy).
        with_embeddings: False skips the embedding head (a keypoint-only stage would pay about a
        fifth of its step for embeddings nobody reads).
        Returns features (B, D, h, w), embeddings (B, F, 4h, 4w) or None, heatmaps
        {name: (B_d, K_d, 4h, 4w)} for datasets present, sample_indices {name: (B_d,)}.
        """
        if sample_groups is None:
            sample_groups = group_samples_by_dataset(dataset_idx.cpu(), len(self.heads))
        # A batch sorted by dataset (the training loader's) runs each MoE expert and each head
        # on a slice of rows instead of gathering them.
        sizes = (contiguous_group_sizes(sample_groups)
                 if all(g.device.type == "cpu" for g in sample_groups) else None)
        features = self.backbone(images, dataset_idx, sizes)
        runs = features.split(sizes) if sizes is not None else None  # views, no copy
        heatmaps: dict[str, Tensor] = {}
        sample_indices: dict[str, Tensor] = {}
        for d, (name, head) in enumerate(self.heads.items()):
            index = sample_groups[d]
            if index.numel() == 0:
                continue
            index = index.to(features.device, non_blocking=True)
            heatmaps[name] = head(runs[d] if runs is not None
                                  else select_samples(features, index))
            sample_indices[name] = index
        embeddings = None
        if with_embeddings and self.embedding_head is not None:
            embeddings = self.embedding_head(features)
        return {
            "features": features,
            "embeddings": embeddings,
            "heatmaps": heatmaps,
            "sample_indices": sample_indices,
        }

    # ----- freezing (METHOD.md §4 stages) -----
    def part_modules(self, part: str) -> list[nn.Module]:
        if part == "backbone":
            return [self.backbone]
        if part == "keypoint_heads":
            return [self.heads]
        if part == "embedding_head":
            return [self.embedding_head] if self.embedding_head is not None else []
        raise PosebhError(f"unknown model part '{part}'; expected one of {list(MODEL_PARTS)}")

    def set_frozen(self, parts: Iterable[str]) -> None:
        """Freeze exactly `parts` (requires_grad False, eval-mode BN/dropout); unfreeze the rest."""
        parts = set(parts)
        for part in MODEL_PARTS:
            for module in self.part_modules(part):
                module.requires_grad_(part not in parts)
        self.frozen = parts
        self.train(self.training)

    def train(self, mode: bool = True) -> PoseBHModel:
        super().train(mode)
        # Frozen parts stay in eval mode: BN statistics must not drift and drop-path stays off.
        for part in self.frozen:
            for module in self.part_modules(part):
                module.eval()
        return self


def _attr(cfg: Any, name: str, default: Any = None) -> Any:
    return getattr(cfg, name, default)


def build_model(
    model_cfg: Any, datasets: Sequence[tuple[str, int]], seed: int | None = None,
    head_softmax_sigma: float | None = None,
) -> PoseBHModel:
    """PoseBH model for `datasets` = [(name, num_keypoints), ...] in recipe order."""
    if not datasets:
        raise PosebhError("model needs at least one dataset")
    seed = int(seed if seed is not None else _attr(model_cfg, "seed", 0) or 0)
    input_size = tuple(model_cfg.input_size)
    heatmap_size = tuple(model_cfg.heatmap_size)
    patch = int(model_cfg.patch_size)
    deconvs = int(model_cfg.head_deconvs)
    grid = (input_size[0] // patch, input_size[1] // patch)
    expected = (grid[0] * 2**deconvs, grid[1] * 2**deconvs)
    if expected != heatmap_size:
        raise PosebhError(
            f"model.heatmap_size {heatmap_size} does not match input_size {input_size} / patch "
            f"{patch} x 2^head_deconvs ({deconvs}) = {expected}"
        )
    expert_dim = _attr(model_cfg, "expert_dim") or None
    config = ViTConfig(
        arch=str(model_cfg.backbone),
        img_size=input_size,
        patch_size=patch,
        num_experts=len(datasets) if model_cfg.moe else 0,
        expert_dim=expert_dim,
        drop_path=_attr(model_cfg, "drop_path"),
        stem_channels=tuple(_attr(model_cfg, "stem_channels", ()) or ()),
        pos_embed_init=str(_attr(model_cfg, "pos_embed_init", "random")),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # reproducible weights without touching the caller's RNG
        backbone = PoseViT(config)
        dim = backbone.embed_dim
        heads = nn.ModuleDict({
            name: HeatmapHead(dim, k, channels=int(model_cfg.head_channels), num_deconvs=deconvs,
                              softmax_sigma=head_softmax_sigma)
            for name, k in datasets
        })
        embedding_dim = int(model_cfg.embedding_dim)
        embedding_head = table = None
        if embedding_dim > 0:
            channels = int(model_cfg.embed_head_channels)
            embedding_head = EmbeddingHead(
                dim, channels=channels, embed_dim=embedding_dim, num_deconvs=deconvs,
                res_channels=int(_attr(model_cfg, "embed_res_channels", 64)),
            )
            table = PrototypeTable(
                sum(k for _, k in datasets), int(model_cfg.prototypes_per_type), embedding_dim,
                seed=seed,
            )
    offsets, start = [], 0
    for _, k in datasets:
        offsets.append(start)
        start += k
    return PoseBHModel(backbone, heads, embedding_head, table, offsets)
