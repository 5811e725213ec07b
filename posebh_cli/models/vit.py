"""ViT backbone for top-down pose (METHOD.md §1), built on timm's VisionTransformer and Block.

No cls token, learned position embedding, patch embedding Conv2d(3, D, p, stride p, padding 2) as
in ViTPose, final LayerNorm(eps 1e-6); output (B, D, H/p, W/p). With `num_experts > 0` every FFN
is the ViTPose++ mixture of experts (posebh_cli.models.moe), routed by `dataset_idx (B,)`.
For models trained from scratch, `stem_channels` swaps the patch conv for a convolutional stem
(models/conv_stem.py) and `pos_embed_init = "sincos"` starts the position embedding from the fixed
2-D sin-cos table of MAE (timm's build_sincos2d_pos_embed) instead of timm's small noise, so a
model trained from random weights knows where each token is at step 0 (measured on the demo data,
4 epochs: human AP 0.267 against 0.253, animal 0.385 against 0.329, hand PCK@0.1 0.514 against
0.456); the table stays trainable. The defaults are ViTPose's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import Tensor, nn

from posebh_cli.errors import PosebhError
from posebh_cli.models.conv_stem import ConvStem
from posebh_cli.models.moe import MoEMlp
from posebh_cli.recipe import POS_EMBED_INITS
from posebh_cli.timm_import import import_timm

_timm = import_timm()
_vit_module = _timm.models.vision_transformer


@dataclass(frozen=True)
class ArchSpec:
    """Width, depth, heads and default drop-path rate of one ViT size."""

    embed_dim: int
    depth: int
    num_heads: int
    drop_path: float
    expert_dim: int  # ViTPose++ expert slice P (METHOD.md §1: 192 for B, 320 for H)


# tiny is a CPU demo size (depth 6 instead of DeiT-Ti's 12); the rest follow ViTPose.
ARCHS: dict[str, ArchSpec] = {
    "tiny": ArchSpec(192, 6, 3, 0.1, 48),
    "small": ArchSpec(384, 12, 6, 0.1, 96),
    "base": ArchSpec(768, 12, 12, 0.3, 192),
    "large": ArchSpec(1024, 24, 16, 0.5, 256),
    "huge": ArchSpec(1280, 32, 16, 0.55, 320),
}


@dataclass(frozen=True)
class ViTConfig:
    """Everything needed to rebuild a PoseViT (also used by merge_expert)."""

    arch: str = "base"
    img_size: tuple[int, int] = (256, 192)
    patch_size: int = 16
    num_experts: int = 0  # 0: plain FFN; E > 0: ViTPose++ MoE with E experts
    expert_dim: int | None = None  # None: the arch default
    drop_path: float | None = None  # None: the arch default
    stem_channels: tuple[int, ...] = ()  # () = the patch conv; else ConvStem widths, 2^n = p
    pos_embed_init: str = "random"  # "random" (timm) or "sincos" (MAE's table, trainable)

    @property
    def spec(self) -> ArchSpec:
        try:
            return ARCHS[self.arch]
        except KeyError:
            raise PosebhError(
                f"unknown backbone '{self.arch}'; expected one of {sorted(ARCHS)}"
            ) from None


def patch_padding(patch_size: int) -> int:
    """ViTPose pads the patch conv by 2; the token grid stays H/p x W/p only for p > 4."""
    return 2 if patch_size > 4 else 0


class RoutedBlock(_vit_module.Block):
    """timm Block whose FFN may take the per-sample dataset index (ViTPose++ MoE)."""

    def forward(self, x: Tensor, dataset_idx: Tensor | None = None,  # type: ignore[override]
                group_sizes: Sequence[int] | None = None) -> Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        hidden = self.norm2(x)
        if isinstance(self.mlp, MoEMlp):
            if dataset_idx is None:
                raise ValueError("a MoE backbone needs dataset_idx (B,) in forward")
            hidden = self.mlp(hidden, dataset_idx, group_sizes)
        else:
            hidden = self.mlp(hidden)
        return x + self.drop_path2(self.ls2(hidden))


class PoseViT(_vit_module.VisionTransformer):
    """timm VisionTransformer without cls token that returns a feature map (B, D, H/p, W/p)."""

    def __init__(self, config: ViTConfig) -> None:
        spec = config.spec
        height, width = config.img_size
        p = config.patch_size
        if height % p or width % p:
            raise PosebhError(
                f"model.input_size {config.img_size} must be divisible by model.patch_size {p}"
            )
        stem = tuple(config.stem_channels)
        if stem and 2 ** len(stem) != p:
            raise PosebhError(
                f"model.stem_channels {list(stem)}: {len(stem)} stride-2 convs give a stride of "
                f"{2 ** len(stem)}, but model.patch_size is {p}; give log2(patch_size) widths"
            )
        if config.pos_embed_init not in POS_EMBED_INITS:
            raise PosebhError(f"model.pos_embed_init '{config.pos_embed_init}': expected one of "
                              f"{', '.join(POS_EMBED_INITS)}")
        mlp_layer: type[nn.Module] | partial = _timm.layers.Mlp
        if config.num_experts > 0:
            expert_dim = config.expert_dim if config.expert_dim is not None else spec.expert_dim
            mlp_layer = partial(MoEMlp, num_experts=config.num_experts, expert_dim=expert_dim)
        drop_path = spec.drop_path if config.drop_path is None else config.drop_path
        super().__init__(
            img_size=(height, width),
            patch_size=p,
            num_classes=0,
            global_pool="",
            embed_dim=spec.embed_dim,
            depth=spec.depth,
            num_heads=spec.num_heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            class_token=False,
            drop_path_rate=drop_path,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            block_fn=RoutedBlock,
            mlp_layer=mlp_layer,
        )
        self.config = config
        old = self.patch_embed.proj
        if stem:
            self.patch_embed.proj = ConvStem(stem, old.out_channels, old.in_channels)
        else:
            # ViTPose's patch conv has padding 2: (H + 4 - p) // p + 1 == H / p for p > 4.
            self.patch_embed.proj = nn.Conv2d(
                old.in_channels, old.out_channels, p, stride=p, padding=patch_padding(p)
            )
            with torch.no_grad():
                self.patch_embed.proj.weight.copy_(old.weight)
                self.patch_embed.proj.bias.copy_(old.bias)
        self.grid_size: tuple[int, int] = (height // p, width // p)
        if config.pos_embed_init == "sincos":
            with torch.no_grad():
                table = _timm.layers.build_sincos2d_pos_embed(list(self.grid_size), spec.embed_dim)
                self.pos_embed.copy_(table[None])  # (1, h * w, D), tokens row-major

    def forward(self, x: Tensor, dataset_idx: Tensor | None = None,  # type: ignore[override]
                group_sizes: Sequence[int] | None = None) -> Tensor:
        """x: (B, 3, H, W); dataset_idx: (B,) int64 (needed with MoE). Returns (B, D, H/p, W/p).

        group_sizes: per-dataset sample counts when the batch is sorted by dataset (the MoE
        FFN then runs on each run of rows, models/moe.py); None works for any order.
        """
        tokens = self.patch_embed(x)  # (B, N, D), N = H/p * W/p
        tokens = self.pos_drop(tokens + self.pos_embed)
        for block in self.blocks:
            tokens = block(tokens, dataset_idx, group_sizes)
        tokens = self.norm(tokens)
        grid_h, grid_w = self.grid_size
        # A channels-last view of the tokens, no copy (the heads' convs run in that layout).
        return tokens.view(x.shape[0], grid_h, grid_w, -1).permute(0, 3, 1, 2)


def build_vit(config: ViTConfig) -> PoseViT:
    return PoseViT(config)


def merge_expert(model: PoseViT, dataset_index: int) -> PoseViT:
    """A plain ViT equal to the MoE `model` on dataset `dataset_index` (METHOD.md §1).

    Each block's fc2 becomes concat(shared fc2 rows, expert rows of that dataset).
    """
    experts = model.config.num_experts
    if experts <= 0:
        raise ValueError("merge_expert needs a MoE backbone (num_experts > 0)")
    if not 0 <= dataset_index < experts:
        raise PosebhError(f"dataset index {dataset_index} is out of range [0, {experts})")
    plain = PoseViT(replace(model.config, num_experts=0, expert_dim=None))
    state = {k: v for k, v in model.state_dict().items() if ".mlp.expert_" not in k}
    for i, block in enumerate(model.blocks):
        weight, bias = block.mlp.merged_fc2(dataset_index)
        state[f"blocks.{i}.mlp.fc2.weight"] = weight.detach().clone()
        state[f"blocks.{i}.mlp.fc2.bias"] = bias.detach().clone()
    plain.load_state_dict(state, strict=True)
    plain.train(model.training)
    return plain


_BLOCK_PATTERN = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(param_name: str, depth: int) -> int:
    """Layer index for layer-wise LR decay (METHOD.md §4).

    patch/pos embedding (and cls/mask tokens) = 0, block i = i + 1, everything else = depth + 1.
    Works with prefixes such as "backbone.".
    """
    tail = param_name.rsplit("backbone.", 1)[-1]
    if tail.startswith(("patch_embed", "pos_embed", "cls_token", "mask_token")):
        return 0
    match = _BLOCK_PATTERN.search(param_name)
    if match:
        return int(match.group(1)) + 1
    return depth + 1

