"""Load local timm / MAE / ViTPose(++) backbone weights into a PoseViT.

Pretrained weights cannot be downloaded here, so they come from a local file (.safetensors, or
.pth/.pt read with `torch.load(weights_only=True)`). Key handling:
- wrappers "model" / "state_dict" / "module" are unwrapped, "module." and "backbone." prefixes
  stripped, ViTPose's "last_norm." renamed to "norm.";
- cls token, classifier head, fc_norm and MAE decoder/mask-token keys are ignored (no cls token
  and no classifier in a pose backbone);
- pos_embed is resampled (bicubic) to the model's token grid after dropping a cls slot;
- ViTPose++ expert Linear layers "mlp.experts.{e}.weight/bias" are stacked into the MoE tensors.
Missing / unexpected / ignored keys are returned so the caller can report them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from posebh_cli.errors import PosebhError
from posebh_cli.models.vit import PoseViT
from posebh_cli.timm_import import import_timm

_IGNORED_PREFIXES = (
    "cls_token", "head.", "head_drop", "fc_norm.", "mask_token", "decoder_", "dist_token",
    "keypoint_head", "associate_keypoint_head",
)
_EXPERT_KEY = re.compile(r"^(blocks\.\d+\.mlp)\.experts\.(\d+)\.(weight|bias)$")


@dataclass
class WeightLoadReport:
    """Keys the model expected but the file lacked, file keys the model has no place for, and
    file keys deliberately dropped (cls token, heads, MAE decoder)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    loaded: int = 0  # model tensors filled from the file

    def summary(self, path: str | Path) -> str:
        """One line for the user: how many tensors loaded, then each kind of left-over key."""
        parts = [f"backbone weights {path}: {self.loaded} tensors loaded"]
        for label, keys in (("missing (kept at init)", self.missing),
                            ("unexpected (not used)", self.unexpected),
                            ("ignored", self.ignored)):
            if keys:
                shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a local weights file; PosebhError when it is not a readable state dict."""
    path = Path(path)
    if not path.is_file():
        raise PosebhError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path), device="cpu")
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any parse failure is a bad user file
        raise PosebhError(
            f"cannot read weights file {path}: {type(error).__name__}: {error}"
        ) from None
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(raw, dict) and isinstance(raw.get(wrapper), dict):
            raw = raw[wrapper]
    if not isinstance(raw, dict) or not raw or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in raw.items()
    ):
        raise PosebhError(
            f"weights file {path} is not a state dict (expected a mapping of names to tensors)"
        )
    return raw


def _strip(key: str) -> str:
    for prefix in ("module.", "backbone.", "encoder."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    if key.startswith("last_norm."):
        key = "norm." + key[len("last_norm."):]
    return key


def resample_pos_embed(pos_embed: Tensor, grid: tuple[int, int], source: str,
                       fold_first_slot: bool = False) -> Tensor:
    """(1, n, D) with or without one cls slot -> (1, grid_h * grid_w, D).

    fold_first_slot: the file has no cls token, so its first slot is ViTPose's extra position
    added to every patch token (pos[:, 1:] + pos[:, :1]); otherwise the cls slot is dropped.
    """
    n = pos_embed.shape[1]
    target = grid[0] * grid[1]
    if n == target:
        return pos_embed
    if n == target + 1:
        return pos_embed[:, 1:] + pos_embed[:, :1] if fold_first_slot else pos_embed[:, 1:]
    old_grid = None
    for prefix in (0, 1):
        side = math.isqrt(n - prefix)
        if side * side == n - prefix:
            old_grid, tokens = (side, side), pos_embed[:, prefix:]
            break
    if old_grid is None:
        raise PosebhError(
            f"{source}: pos_embed has {n} tokens, which is neither a square grid (optionally with "
            f"a cls token) nor the model's {grid[0]}x{grid[1]} grid"
        )
    resample = import_timm().layers.resample_abs_pos_embed
    return resample(tokens.float(), list(grid), list(old_grid), num_prefix_tokens=0)


def remap_state_dict(
    state: dict[str, Tensor], model: PoseViT, source: str
) -> tuple[dict[str, Tensor], list[str]]:
    """File keys -> model keys; returns (mapped tensors, ignored file keys)."""
    mapped: dict[str, Tensor] = {}
    ignored: list[str] = []
    experts: dict[str, dict[int, Tensor]] = {}
    for raw_key, value in state.items():
        key = _strip(raw_key)
        if key.startswith(_IGNORED_PREFIXES):
            ignored.append(raw_key)
            continue
        match = _EXPERT_KEY.match(key)
        if match:
            stem, index, kind = match.groups()
            experts.setdefault(f"{stem}.expert_{kind}", {})[int(index)] = value
            continue
        if key == "pos_embed":
            has_cls = any(_strip(k) == "cls_token" for k in state)
            value = resample_pos_embed(value, model.grid_size, source,
                                       fold_first_slot=not has_cls)
        mapped[key] = value
    for key, by_index in experts.items():
        mapped[key] = torch.stack([by_index[i] for i in sorted(by_index)])
    return mapped, ignored


def load_backbone_weights(model: PoseViT, path: str | Path) -> WeightLoadReport:
    """Load a local timm/MAE/ViTPose weights file into `model` (non-strict); see module doc."""
    state = read_state_dict(path)
    mapped, ignored = remap_state_dict(state, model, str(path))
    own = model.state_dict()
    for key, value in mapped.items():
        if key in own and own[key].shape != value.shape:
            raise PosebhError(
                f"{path}: '{key}' has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)} (different architecture or patch size?)"
            )
    result = model.load_state_dict(mapped, strict=False)
    return WeightLoadReport(
        missing=sorted(result.missing_keys),
        unexpected=sorted(result.unexpected_keys),
        ignored=sorted(ignored),
        loaded=len(mapped) - len(result.unexpected_keys),
    )
