"""Choosing the implementation behind the ops in this package (torch reference or Triton).

"auto" picks Triton for CUDA tensors when triton imports, else the vectorised torch path; the
environment variable POSEBH_SINKHORN=torch|triton forces the choice made by "auto".
"""

from __future__ import annotations

import importlib
import os

import torch

from posebh_cli.errors import PosebhError

BACKENDS = ("auto", "torch", "triton")
BACKEND_ENV_VAR = "POSEBH_SINKHORN"


def triton_import_error() -> str | None:
    """None when triton imports, else the reason (kept as text for the error message)."""
    try:
        importlib.import_module("triton")
    except ImportError as error:  # triton is optional: CPU-only installs lack it
        return f"{type(error).__name__}: {error}"
    return None


def triton_interpreter_enabled() -> bool:
    """True when Triton kernels run in the interpreter (TRITON_INTERPRET=1), i.e. on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def resolve_backend(backend: str, device: torch.device) -> str:
    """Return "torch" or "triton" for tensors on `device`.

    Raises PosebhError for an unknown name, a bad POSEBH_SINKHORN value, or Triton forced where it
    cannot run (not installed; CPU tensors without TRITON_INTERPRET=1).
    """
    if backend not in BACKENDS:
        raise PosebhError(f"unknown ops backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        forced = os.environ.get(BACKEND_ENV_VAR, "").strip().lower()
        if forced:
            if forced not in ("torch", "triton"):
                raise PosebhError(
                    f"environment variable {BACKEND_ENV_VAR}={forced!r}:"
                    " expected 'torch' or 'triton'"
                )
            backend = forced
        else:
            wants_triton = device.type == "cuda" and triton_import_error() is None
            return "triton" if wants_triton else "torch"
    if backend == "triton":
        reason = triton_import_error()
        if reason is not None:
            raise PosebhError(
                "ops backend 'triton' needs the 'triton' package, which failed to import"
                f" ({reason}); install triton or use backend 'torch' / {BACKEND_ENV_VAR}=torch"
            )
        if device.type != "cuda" and not triton_interpreter_enabled():
            raise PosebhError(
                f"ops backend 'triton' needs CUDA tensors (got {device.type}) or TRITON_INTERPRET=1"
                " set before triton is imported"
            )
    return backend
