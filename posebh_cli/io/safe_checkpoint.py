"""Load an untrusted checkpoint file without running pickled code.

`torch.load(weights_only=True)` first; when `meta` holds other objects (mmcv configs, numpy
values), a restricted unpickler rebuilds tensors with torch's own helpers and turns every other
named class or function into an inert placeholder that is never called, so a crafted pickle
cannot run code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from posebh_cli.errors import PosebhError


class UnresolvedGlobal:
    """Stands in for a class or function a pickle names but that is not on the allow list.

    Calling it, building it or filling it only records the arguments: nothing is imported or run.
    """

    origin = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> UnresolvedGlobal:
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, state=None, items={}, values=[])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> UnresolvedGlobal:
        return UnresolvedGlobal(*args)

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    # SETITEMS / APPENDS opcodes of dict and list subclasses (e.g. mmcv ConfigDict)
    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__["items"][key] = value

    def append(self, value: Any) -> None:
        self.__dict__["values"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["values"].extend(values)

    def __repr__(self) -> str:
        return f"<unresolved {self.origin}>"


# Tensor reconstruction helpers (torch.save output) and plain containers: nothing else is trusted.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"):
        torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only `_ALLOWED_GLOBALS` and torch dtypes/layouts."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and isinstance(getattr(torch, name, None),
                                             (torch.dtype, torch.layout, torch.memory_format)):
            return getattr(torch, name)
        return type(name, (UnresolvedGlobal,), {"origin": f"{module}.{name}"})


class _RestrictedPickleModule:
    """The `pickle_module` torch.load expects: Unpickler and load (legacy format reads with it)."""

    __name__ = "posebh_restricted_pickle"
    Unpickler = RestrictedUnpickler

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(error).__name__}: {line[:limit]}"


def load_checkpoint_object(path: str | Path) -> Any:
    """The unpickled content of a checkpoint file, loaded without executing its pickle.

    `.safetensors` files are read as a flat tensor mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise PosebhError(f"checkpoint file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # every parse failure is a bad user file
            raise PosebhError(f"{path}: not a readable safetensors file "
                              f"({_first_line(error)})") from None
    # Zip checkpoints are memory-mapped: tensors are read from the page cache on first use
    # (a ViT-B PoseBH file is ~0.6 GB), not copied up front.
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if "weights only load failed" not in str(error).lower():
            raise PosebhError(f"{path}: not a PyTorch checkpoint ({_first_line(error)})") from None
    except Exception as error:
        raise PosebhError(f"{path}: not a PyTorch checkpoint ({_first_line(error)})") from None
    # weights_only refused some object (usually in `meta`): rebuild tensors, stub the rest.
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap,
                          pickle_module=_RestrictedPickleModule)
    except Exception as error:
        raise PosebhError(f"{path}: not a PyTorch checkpoint ({_first_line(error)})") from None


def extract_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    """The model tensors of a loaded checkpoint: obj["state_dict"] (or a bare mapping of them)."""
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state = obj["state_dict"]
    elif isinstance(obj, Mapping) and any(str(k).startswith("backbone.") for k in obj):
        state = obj
    else:
        found = sorted(map(str, obj))[:5] if isinstance(obj, Mapping) else type(obj).__name__
        raise PosebhError(f"{source}: not an mmpose checkpoint (expected a dict with "
                          f"'state_dict'; found {found})")
    if not isinstance(state, Mapping) or not state:
        raise PosebhError(f"{source}: 'state_dict' is empty or not a mapping")
    bad = [k for k, v in state.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise PosebhError(f"{source}: state_dict entry {bad[0]!r} is not a named tensor")
    if all(k.startswith("module.") for k in state):  # saved from a DDP wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)
