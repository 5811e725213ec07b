"""Synthetic mmpose ViTPose / ViTPose++ / PoseBH state dicts and a reference forward on them.

The state dicts have exactly the key names and shape rules of the released checkpoints (issue 8),
with a small width. Values are multiples of 1/1024 in a small range, so the two sums the import
performs (pos_embed slot fold, conv-bias -> BN mean fold) are exact in fp32 and the imported
model can be compared with the reference in float64 at ~1e-10.

The reference forward is written from the ViTPose / PoseBH definitions with torch.nn.functional
only (no timm, no posebh modules), so it checks the import independently.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor

LN_EPS = 1e-6
BN_EPS = 1e-5
# posebh's "tiny" backbone shrunk for speed (tests patch ARCHS["tiny"] with it): width 64,
# depth 2, 2 attention heads, expert rows 16.
MICRO = {"dim": 64, "depth": 2, "num_heads": 2, "expert_dim": 16}


def use_micro_arch(monkeypatch) -> None:
    from posebh_cli.models.vit import ARCHS, ArchSpec

    monkeypatch.setitem(ARCHS, "tiny", ArchSpec(MICRO["dim"], MICRO["depth"], MICRO["num_heads"],
                                                0.1, MICRO["expert_dim"]))


class _Values:
    """Seeded normal values, rounded to multiples of 1/1024 when exact."""

    def __init__(self, seed: int, exact: bool) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.exact = exact

    def __call__(self, shape, scale=0.05, offset=0.0) -> Tensor:
        values = torch.randn(shape, generator=self.generator).mul_(scale).add_(offset)
        return values.mul_(1024).round_().div_(1024) if self.exact else values


def _bn(state, prefix, channels, v: _Values) -> None:
    state[f"{prefix}.weight"] = v((channels,), 0.1, 1.0)
    state[f"{prefix}.bias"] = v((channels,), 0.1)
    state[f"{prefix}.running_mean"] = v((channels,), 0.1)
    state[f"{prefix}.running_var"] = v((channels,), 0.1).abs() + 0.5
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(1000, dtype=torch.int64)


def make_state(*, dim=64, depth=2, grid=(4, 3), patch=16, keypoints=(17, 16),
               experts=0, expert_dim=16, head_channels=16, deconvs=2, proto=None,
               proto_neck="res", seed=0, exact=True) -> OrderedDict:
    """mmpose state dict. proto: None or (M, F, embed_channels) for a PoseBH proto_head whose
    neck has 64 channels (reference 'res' neck, head_kernel 3); proto_neck 'res2' gives the
    reference's other neck design (two ResBlocks: neck.0/neck.1). exact=False skips the 1/1024
    rounding (large files, where only shapes matter)."""
    v = _Values(seed, exact)
    s: OrderedDict[str, Tensor] = OrderedDict()
    hidden = 4 * dim
    s["backbone.pos_embed"] = v((1, 1 + grid[0] * grid[1], dim), 0.1)
    s["backbone.patch_embed.proj.weight"] = v((dim, 3, patch, patch), 0.02)
    s["backbone.patch_embed.proj.bias"] = v((dim,), 0.02)
    for i in range(depth):
        b = f"backbone.blocks.{i}"
        for norm in ("norm1", "norm2"):
            s[f"{b}.{norm}.weight"] = v((dim,), 0.1, 1.0)
            s[f"{b}.{norm}.bias"] = v((dim,), 0.05)
        s[f"{b}.attn.qkv.weight"] = v((3 * dim, dim), 0.05)
        s[f"{b}.attn.qkv.bias"] = v((3 * dim,), 0.02)
        s[f"{b}.attn.proj.weight"] = v((dim, dim), 0.05)
        s[f"{b}.attn.proj.bias"] = v((dim,), 0.02)
        s[f"{b}.mlp.fc1.weight"] = v((hidden, dim), 0.05)
        s[f"{b}.mlp.fc1.bias"] = v((hidden,), 0.02)
        rows = dim - expert_dim if experts else dim
        s[f"{b}.mlp.fc2.weight"] = v((rows, hidden), 0.03)
        s[f"{b}.mlp.fc2.bias"] = v((rows,), 0.02)
        for e in range(experts):
            s[f"{b}.mlp.experts.{e}.weight"] = v((expert_dim, hidden), 0.03)
            s[f"{b}.mlp.experts.{e}.bias"] = v((expert_dim,), 0.02)
    s["backbone.last_norm.weight"] = v((dim,), 0.1, 1.0)
    s["backbone.last_norm.bias"] = v((dim,), 0.05)
    for h, k in enumerate(keypoints):
        prefix = "keypoint_head" if h == 0 else f"associate_keypoint_heads.{h - 1}"
        _deconvs(s, prefix, dim, head_channels, deconvs, v)
        s[f"{prefix}.final_layer.weight"] = v((k, head_channels, 1, 1), 0.1)
        s[f"{prefix}.final_layer.bias"] = v((k,), 0.05)
    if proto is not None:
        per_type, feat, channels = proto
        p = "proto_head"
        _deconvs(s, p, dim, channels, deconvs, v)
        necks = ["neck"] if proto_neck == "res" else ["neck.0", "neck.1"]
        cin = channels
        for neck in necks:
            s[f"{p}.{neck}.conv1.weight"] = v((64, cin, 3, 3), 0.05)
            s[f"{p}.{neck}.conv1.bias"] = v((64,), 0.05)
            _bn(s, f"{p}.{neck}.bn1", 64, v)
            s[f"{p}.{neck}.conv2.weight"] = v((64, 64, 3, 3), 0.05)
            s[f"{p}.{neck}.conv2.bias"] = v((64,), 0.05)
            _bn(s, f"{p}.{neck}.bn2", 64, v)
            if cin != 64:
                s[f"{p}.{neck}.downsample.0.weight"] = v((64, cin, 1, 1), 0.05)
                _bn(s, f"{p}.{neck}.downsample.1", 64, v)
            cin = 64
        s[f"{p}.head.0.weight"] = v((64, 64, 3, 3), 0.05)
        s[f"{p}.head.0.bias"] = v((64,), 0.05)
        _bn(s, f"{p}.head.1", 64, v)
        s[f"{p}.head.3.weight"] = v((feat, 64, 1, 1), 0.1)
        s[f"{p}.head.3.bias"] = v((feat,), 0.05)
        table = torch.randn(sum(keypoints), per_type, feat, generator=v.generator)
        s[f"{p}.kpt_prototype.prototypes"] = F.normalize(table, dim=-1)
    return s


def _deconvs(s, prefix, dim, channels, deconvs, v) -> None:
    for j in range(deconvs):
        s[f"{prefix}.deconv_layers.{3 * j}.weight"] = v(
            (dim if j == 0 else channels, channels, 4, 4), 0.05)
        _bn(s, f"{prefix}.deconv_layers.{3 * j + 1}", channels, v)


# ----------------------------------------------------------------------------- reference


def _as(state, dtype):
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _batch_norm(x: Tensor, s, prefix) -> Tensor:
    return F.batch_norm(x, s[f"{prefix}.running_mean"], s[f"{prefix}.running_var"],
                        s[f"{prefix}.weight"], s[f"{prefix}.bias"], training=False, eps=BN_EPS)


def reference_backbone(s, images: Tensor, dataset_idx: Tensor, num_heads: int) -> Tensor:
    """ViTPose(++) forward: images (B, 3, H, W) -> features (B, D, h, w)."""
    s = _as(s, images.dtype)
    weight = s["backbone.patch_embed.proj.weight"]
    x = F.conv2d(images, weight, s["backbone.patch_embed.proj.bias"], stride=weight.shape[2],
                 padding=2)
    batch, dim, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)  # (B, N, D)
    pos = s["backbone.pos_embed"]
    x = x + pos[:, 1:] + pos[:, :1]
    depth = 1 + max(int(k.split(".")[2]) for k in s if k.startswith("backbone.blocks."))
    for i in range(depth):
        b = f"backbone.blocks.{i}"
        y = F.layer_norm(x, (dim,), s[f"{b}.norm1.weight"], s[f"{b}.norm1.bias"], LN_EPS)
        qkv = F.linear(y, s[f"{b}.attn.qkv.weight"], s[f"{b}.attn.qkv.bias"])
        qkv = qkv.reshape(batch, -1, 3, num_heads, dim // num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * (dim // num_heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(batch, -1, dim)
        x = x + F.linear(y, s[f"{b}.attn.proj.weight"], s[f"{b}.attn.proj.bias"])
        y = F.layer_norm(x, (dim,), s[f"{b}.norm2.weight"], s[f"{b}.norm2.bias"], LN_EPS)
        hidden = F.gelu(F.linear(y, s[f"{b}.mlp.fc1.weight"], s[f"{b}.mlp.fc1.bias"]))
        out = F.linear(hidden, s[f"{b}.mlp.fc2.weight"], s[f"{b}.mlp.fc2.bias"])
        if f"{b}.mlp.experts.0.weight" in s:
            expert = torch.stack([
                F.linear(hidden[n], s[f"{b}.mlp.experts.{int(d)}.weight"],
                         s[f"{b}.mlp.experts.{int(d)}.bias"])
                for n, d in enumerate(dataset_idx)])
            out = torch.cat([out, expert], dim=-1)
        x = x + out
    x = F.layer_norm(x, (dim,), s["backbone.last_norm.weight"], s["backbone.last_norm.bias"],
                     LN_EPS)
    return x.permute(0, 2, 1).reshape(batch, dim, h, w)


def _reference_deconvs(s, prefix, x: Tensor) -> Tensor:
    j = 0
    while f"{prefix}.deconv_layers.{j}.weight" in s:
        x = F.conv_transpose2d(x, s[f"{prefix}.deconv_layers.{j}.weight"], stride=2, padding=1)
        x = F.relu(_batch_norm(x, s, f"{prefix}.deconv_layers.{j + 1}"))
        j += 3
    return x


def reference_head(s, head_index: int, features: Tensor) -> Tensor:
    """TopdownHeatmapSimpleHead: (B, D, h, w) -> (B, K, 4h, 4w)."""
    s = _as(s, features.dtype)
    prefix = "keypoint_head" if head_index == 0 else f"associate_keypoint_heads.{head_index - 1}"
    x = _reference_deconvs(s, prefix, features)
    return F.conv2d(x, s[f"{prefix}.final_layer.weight"], s[f"{prefix}.final_layer.bias"])


def reference_embedding(s, features: Tensor) -> Tensor:
    """KptProtoHead (neck 'res', head_kernel 3, SiLU) before the prototypes: (B, F, 4h, 4w)."""
    s = _as(s, features.dtype)
    p = "proto_head"
    x = _reference_deconvs(s, p, features)
    r = F.conv2d(x, s[f"{p}.neck.conv1.weight"], s[f"{p}.neck.conv1.bias"], padding=1)
    r = F.silu(_batch_norm(r, s, f"{p}.neck.bn1"))
    r = F.conv2d(r, s[f"{p}.neck.conv2.weight"], s[f"{p}.neck.conv2.bias"], padding=1)
    r = _batch_norm(r, s, f"{p}.neck.bn2")
    shortcut = _batch_norm(F.conv2d(x, s[f"{p}.neck.downsample.0.weight"]), s,
                           f"{p}.neck.downsample.1")
    x = F.silu(r + shortcut)
    x = F.conv2d(x, s[f"{p}.head.0.weight"], s[f"{p}.head.0.bias"], padding=1)
    x = F.silu(_batch_norm(x, s, f"{p}.head.1"))
    return F.conv2d(x, s[f"{p}.head.3.weight"], s[f"{p}.head.3.bias"])


def save_checkpoint(path, state, meta=None, **kwargs) -> None:
    """An mmpose-style file: {'meta': ..., 'state_dict': ...}."""
    torch.save({"meta": meta if meta is not None else {"epoch": 100, "iter": 1},
                "state_dict": state}, path, **kwargs)
