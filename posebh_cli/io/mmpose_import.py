"""Read ViTPose / ViTPose++ / PoseBH mmpose checkpoints and map them onto a posebh model.

File layout (mmpose 0.x `save_checkpoint`: {"state_dict": ..., "meta": ..., "optimizer": ...}):
- backbone.patch_embed.proj.*  Conv2d(3, D, 16, stride 16, padding 2) (METHOD.md §1)
- backbone.pos_embed (1, 1 + N, D): ViTPose adds pos_embed[:, 1:] + pos_embed[:, :1] to the N patch
  tokens (an unused cls slot folded in), so the imported table is that sum (exact).
- backbone.blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.*; ViTPose++ adds
  backbone.blocks.{i}.mlp.experts.{j}.* (fc2 then has D - P rows, each expert P rows), stacked here
  into the MoE tensors (E, P, 4D) / (E, P).
- backbone.last_norm.*
- keypoint_head.{deconv_layers.{0,1,3,4}, final_layer}.* for the first dataset and
  associate_keypoint_heads.{k}.* for the others, in expert order.
- PoseBH: proto_head.{deconv_layers, neck (ResBlock conv1/bn1/conv2/bn2/downsample), head (conv3x3,
  BN, SiLU, conv1x1)}.* and proto_head.kpt_prototype.prototypes (J, M, F). Its convs before a BN
  carry a bias that ours lack; a bias b before BN is exactly a running_mean shift (BN(x + b) with
  mean m equals BN(x) with mean m - b, and batch statistics cancel b), so it is folded there.

Checkpoints are untrusted files: `torch.load(weights_only=True)` first; when `meta` holds other
objects (mmcv configs, numpy values), a restricted unpickler rebuilds tensors with torch's own
helpers and turns every other named class or function into an inert placeholder that is never
called, so a crafted pickle cannot run code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from posebh_cli.errors import PosebhError

# ----------------------------------------------------------------------------- layout

ARCH_ALIASES = {"vits": "small", "vitb": "base", "vitl": "large", "vith": "huge"}
REFERENCE_DATASETS = ("coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody")

_BLOCK = re.compile(r"^backbone\.blocks\.(\d+)\.")
_EXPERT = re.compile(r"^backbone\.blocks\.(\d+)\.mlp\.experts\.(\d+)\.(weight|bias)$")
_HEAD = re.compile(r"^(keypoint_head|associate_keypoint_heads\.(\d+))\.(.+)$")


@dataclass(frozen=True)
class CheckpointLayout:
    """Sizes read from the tensors' shapes.

    head_keypoints: (H,) K of each head, keypoint_head first; prototypes: (J, M, F) or None.
    """

    embed_dim: int
    depth: int
    patch_size: int
    grid: tuple[int, int]
    pos_embed_slot: bool  # pos_embed holds the extra (cls) slot that ViTPose folds in
    num_experts: int
    expert_dim: int  # P; 0 without experts
    head_keypoints: tuple[int, ...]
    head_channels: int
    head_deconvs: int
    prototypes: tuple[int, int, int] | None
    embed_head_channels: int | None

    @property
    def kind(self) -> str:
        if self.prototypes is not None:
            return "posebh"
        return "vitpose++" if self.num_experts else "vitpose"

    @property
    def input_size(self) -> tuple[int, int]:
        return self.grid[0] * self.patch_size, self.grid[1] * self.patch_size

    @property
    def heatmap_size(self) -> tuple[int, int]:
        scale = 2 ** self.head_deconvs
        return self.grid[0] * scale, self.grid[1] * scale


def _tensor(state: Mapping[str, Tensor], key: str, source: str, ndim: int) -> Tensor:
    if key not in state:
        raise PosebhError(f"{source}: '{key}' is missing (not a ViTPose-family checkpoint?)")
    value = state[key]
    if value.ndim != ndim:
        raise PosebhError(f"{source}: '{key}' has shape {tuple(value.shape)}, expected "
                          f"{ndim} dimensions")
    return value


def token_grid(num_tokens: int, input_size: tuple[int, int] | None, patch: int,
               source: str) -> tuple[int, int] | None:
    """(h, w) token grid for `num_tokens`: from input_size when given, else the 4:3 (H:W) grid
    every ViTPose top-down model uses (256x192 -> 16x12); None when it does not fit."""
    if input_size is not None:
        grid = (input_size[0] // patch, input_size[1] // patch)
        return grid if grid[0] * grid[1] == num_tokens else None
    height = round(math.sqrt(num_tokens * 4 / 3))
    if height % 4 == 0 and height * (height * 3 // 4) == num_tokens:
        return height, height * 3 // 4
    return None


def read_layout(state: Mapping[str, Tensor], source: str,
                input_size: tuple[int, int] | None = None) -> CheckpointLayout:
    """Architecture sizes of an mmpose ViTPose-family state dict; PosebhError when inconsistent."""
    proj = _tensor(state, "backbone.patch_embed.proj.weight", source, 4)  # (D, 3, p, p)
    dim, patch = int(proj.shape[0]), int(proj.shape[2])
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK.match(k))), default=-1)
    if depth == 0:
        raise PosebhError(f"{source}: no backbone.blocks.* tensors")
    pos = _tensor(state, "backbone.pos_embed", source, 3)  # (1, 1 + N, D)
    tokens = int(pos.shape[1])
    grid = token_grid(tokens - 1, input_size, patch, source)
    slot = grid is not None
    if grid is None:
        grid = token_grid(tokens, input_size, patch, source)
    if grid is None:
        wanted = f"input size {input_size}" if input_size else "a 4:3 input (e.g. 256x192)"
        raise PosebhError(f"{source}: pos_embed has {tokens} tokens, which does not fit "
                          f"{wanted} with patch {patch}; pass --set model.input_size=[H, W]")
    experts = sorted({int(m.group(2)) for k in state if (m := _EXPERT.match(k))})
    if experts != list(range(len(experts))):
        raise PosebhError(f"{source}: expert indices {experts} are not 0..E-1")
    expert_dim = int(state["backbone.blocks.0.mlp.experts.0.weight"].shape[0]) if experts else 0
    fc2 = _tensor(state, "backbone.blocks.0.mlp.fc2.weight", source, 2)
    if int(fc2.shape[0]) != dim - expert_dim:
        raise PosebhError(f"{source}: mlp.fc2 has {fc2.shape[0]} output rows; expected "
                          f"{dim - expert_dim} (D {dim} minus expert rows {expert_dim})")
    heads: dict[int, int] = {}
    deconvs: set[int] = set()
    channels = 0
    for key, value in state.items():
        match = _HEAD.match(key)
        if not match:
            continue
        index = 0 if match.group(2) is None else int(match.group(2)) + 1
        rest = match.group(3)
        if rest == "final_layer.weight":
            if value.ndim != 4 or value.shape[2:] != (1, 1):
                raise PosebhError(f"{source}: '{key}' must be a 1x1 conv, got shape "
                                  f"{tuple(value.shape)}")
            heads[index] = int(value.shape[0])
        elif (index == 0 and value.ndim == 4  # ConvTranspose2d (in, out, k, k); BN is 1-D
              and (m := re.match(r"deconv_layers\.(\d+)\.weight$", rest))):
            deconvs.add(int(m.group(1)))
            channels = int(value.shape[1])
    if sorted(heads) != list(range(len(heads))) or not heads:
        raise PosebhError(f"{source}: expected keypoint_head.final_layer and "
                          f"associate_keypoint_heads.0..N-1; found heads {sorted(heads)}")
    if sorted(deconvs) != [3 * i for i in range(len(deconvs))]:
        raise PosebhError(f"{source}: keypoint_head.deconv_layers indices {sorted(deconvs)} are "
                          "not the ViTPose [ConvT, BN, ReLU] x n stack")
    prototypes = None
    embed_channels = None
    if "proto_head.kpt_prototype.prototypes" in state:
        table = _tensor(state, "proto_head.kpt_prototype.prototypes", source, 3)
        prototypes = tuple(int(s) for s in table.shape)
        if "proto_head.deconv_layers.0.weight" in state:
            embed_channels = int(state["proto_head.deconv_layers.0.weight"].shape[1])
    return CheckpointLayout(
        embed_dim=dim, depth=depth, patch_size=patch, grid=grid, pos_embed_slot=slot,
        num_experts=len(experts), expert_dim=expert_dim,
        head_keypoints=tuple(heads[i] for i in range(len(heads))),
        head_channels=channels or 256, head_deconvs=len(deconvs),
        prototypes=prototypes, embed_head_channels=embed_channels,
    )


def resolve_arch(arch: str | None, layout: CheckpointLayout, source: str) -> str:
    """posebh backbone name for --arch (vits/vitb/vitl/vith or small/base/...; None: inferred)."""
    from posebh_cli.models.vit import ARCHS

    matches = [name for name, spec in ARCHS.items()
               if (spec.embed_dim, spec.depth) == (layout.embed_dim, layout.depth)]
    found = f"width {layout.embed_dim}, depth {layout.depth}"
    if arch is None:
        if not matches:
            raise PosebhError(f"{source}: no known ViT has {found}")
        return matches[0]
    name = ARCH_ALIASES.get(arch.lower(), arch.lower())
    if name not in ARCHS:
        valid = sorted(ARCH_ALIASES) + sorted(ARCHS)
        raise PosebhError(f"--arch {arch}: unknown; expected one of {valid}")
    if name not in matches:
        spec = ARCHS[name]
        raise PosebhError(f"--arch {arch}: the file holds a ViT with {found}, {name} has width "
                          f"{spec.embed_dim}, depth {spec.depth}"
                          + (f" (try --arch {matches[0]})" if matches else ""))
    return name


# ----------------------------------------------------------------------------- key mapping

_BACKBONE_SAME = re.compile(
    r"^backbone\.(patch_embed\.proj\.(?:weight|bias)|"
    r"blocks\.\d+\.(?:norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(?:weight|bias))$")
_BN_PARAMS = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
# proto_head (reference KptProtoHead, neck 'res', head_kernel 3) -> our EmbeddingHead
_PROTO_MODULES = {
    "neck.conv1": "res.body.0", "neck.bn1": "res.body.1",
    "neck.conv2": "res.body.3", "neck.bn2": "res.body.4",
    "neck.downsample.0": "res.shortcut.0", "neck.downsample.1": "res.shortcut.1",
    "head.0": "conv.0", "head.1": "conv.1", "head.3": "final",
}
# conv biases the reference has before a BN: folded into that BN's running_mean
_PROTO_BIAS_FOLDS = {"neck.conv1": "res.body.1", "neck.conv2": "res.body.4",
                     "head.0": "conv.1"}


@dataclass
class ConvertedState:
    """posebh tensors, which file key each came from, and file keys that found no place."""

    tensors: dict[str, Tensor] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)  # conv biases folded into a BN's mean

    def put(self, target: str, value: Tensor, source: str) -> None:
        self.tensors[target] = value
        self.sources[target] = source


def fold_pos_embed(pos_embed: Tensor, has_slot: bool) -> Tensor:
    """(1, 1 + N, D) -> (1, N, D): ViTPose adds pos_embed[:, 1:] + pos_embed[:, :1] to tokens."""
    if not has_slot:
        return pos_embed
    return pos_embed[:, 1:] + pos_embed[:, :1]


def _head_target(rest: str, deconvs: int) -> str | None:
    """keypoint-head suffix -> HeatmapHead suffix; None when it has no place."""
    if m := re.match(rf"^deconv_layers\.(\d+)\.{_BN_PARAMS}$", rest):
        index = int(m.group(1))
        return f"deconv.{index}.{m.group(2)}" if index < 3 * deconvs and index % 3 != 2 else None
    if m := re.match(r"^final_layer\.(weight|bias)$", rest):
        return f"final.{m.group(1)}"
    return None


def _proto_target(rest: str) -> str | None:
    if m := re.match(rf"^deconv_layers\.(\d+)\.{_BN_PARAMS}$", rest):
        return f"deconv.{m.group(1)}.{m.group(2)}" if int(m.group(1)) % 3 != 2 else None
    for module, ours in _PROTO_MODULES.items():
        if m := re.match(rf"^{re.escape(module)}\.{_BN_PARAMS}$", rest):
            return f"{ours}.{m.group(1)}"
    return None


def convert_state_dict(state: Mapping[str, Tensor], layout: CheckpointLayout,
                       dataset_names: Sequence[str]) -> ConvertedState:
    """mmpose keys -> posebh PoseBHModel keys (heads named by `dataset_names`, expert order)."""
    out = ConvertedState()
    experts: dict[tuple[int, str], dict[int, Tensor]] = {}
    proto = ConvertedState()
    for key, value in state.items():
        if m := _BACKBONE_SAME.match(key):
            out.put(f"backbone.{m.group(1)}", value, key)
        elif key == "backbone.pos_embed":
            out.put("backbone.pos_embed", fold_pos_embed(value, layout.pos_embed_slot), key)
        elif key.startswith("backbone.last_norm."):
            out.put("backbone.norm." + key[len("backbone.last_norm."):], value, key)
        elif m := _EXPERT.match(key):
            experts.setdefault((int(m.group(1)), m.group(3)), {})[int(m.group(2))] = value
        elif (m := _HEAD.match(key)) and (target := _head_target(m.group(3), layout.head_deconvs)):
            index = 0 if m.group(2) is None else int(m.group(2)) + 1
            if index < len(dataset_names):
                out.put(f"heads.{dataset_names[index]}.{target}", value, key)
            else:
                out.unmapped.append(key)
        elif key == "proto_head.kpt_prototype.prototypes":
            out.put("prototype_table.prototypes", value, key)
        elif (key.startswith("proto_head.") and key.endswith(".bias")
              and key[11:-5] in _PROTO_BIAS_FOLDS):
            proto.folded.append(key)  # folded below, once the BN's running_mean is known
        elif key.startswith("proto_head.") and (target := _proto_target(key[11:])):
            proto.put(f"embedding_head.{target}", value, key)
        else:
            out.unmapped.append(key)
    for (block, kind), by_index in sorted(experts.items()):
        stacked = torch.stack([by_index[i] for i in range(len(by_index))])  # (E, P, 4D) / (E, P)
        source = f"backbone.blocks.{block}.mlp.experts.*.{kind}"
        out.put(f"backbone.blocks.{block}.mlp.expert_{kind}", stacked, source)
    for bias_key in proto.folded:
        bn = f"embedding_head.{_PROTO_BIAS_FOLDS[bias_key[11:-5]]}.running_mean"
        if bn in proto.tensors:
            proto.put(bn, proto.tensors[bn] - state[bias_key], proto.sources[bn])
            out.folded.append(bias_key)
        else:
            out.unmapped.append(bias_key)
    out.tensors.update(proto.tensors)
    out.sources.update(proto.sources)
    return out
