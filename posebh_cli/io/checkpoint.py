"""Checkpoints: weights in safetensors, run facts in run.json, trainer state for --resume.

- `model.safetensors`: every parameter and persistent buffer (prototype table included), plus
  safetensors metadata naming the format version; safe to load (no pickle).
- `run.json`: what is needed to rebuild the model and read its outputs without the recipe file:
  datasets with skeletons and head sizes, the keypoint-type table layout, step, stage, metrics,
  package version, git SHA.
- `trainer_state.pt`: step, model weights, optimizer, grad scaler and RNG states: the whole
  resume point on its own (the sampler position is a function of the step).
  Loaded with `weights_only=True`, so a tampered file cannot run code.
Every file is written atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = "posebh-1"


def save_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save

    tensors = {name: tensor.detach().contiguous().cpu()
               for name, tensor in model.state_dict().items()}
    atomic_write_bytes(path, save(tensors, metadata={"format": FORMAT_VERSION}))


def load_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a model.safetensors file; PosebhError when missing or corrupt."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PosebhError(f"{path}: checkpoint file not found") from None
    except IsADirectoryError:
        raise PosebhError(f"{path}: expected a model.safetensors file, got a folder") from None
    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise PosebhError(f"{path}: not a readable safetensors checkpoint ({error})") from None


def load_weights_into(model: nn.Module, path: Path) -> None:
    """Load weights strictly: a checkpoint for another architecture is a clear error."""
    tensors = load_weights_file(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        detail = (f"missing {missing[:3]}" if missing else "") + (
            f" unexpected {unexpected[:3]}" if unexpected else "")
        raise PosebhError(f"{path}: checkpoint does not match the model in run.json "
                          f"({detail.strip()})")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise PosebhError(f"{path}: tensor '{name}' has shape {tuple(tensor.shape)}, the "
                              f"model expects {tuple(own[name].shape)}")
    model.load_state_dict(tensors, strict=True)


def save_run_info(path: Path, info: dict[str, Any]) -> None:
    atomic_write_json(path, {"format": FORMAT_VERSION, **info})


def load_run_info(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosebhError(f"{path}: run.json not found next to the checkpoint") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PosebhError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_VERSION:
        raise PosebhError(f"{path}: not a posebh run.json (expected format '{FORMAT_VERSION}')")
    return info


def save_trainer_state(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_trainer_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PosebhError(f"{path}: no trainer state to resume from (train without --resume)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt/unsafe pickles
        raise PosebhError(f"{path}: corrupt or unsafe trainer state ({type(error).__name__})") \
            from None
