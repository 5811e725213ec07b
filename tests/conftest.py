"""Shared fixtures: the real sample data folder (../shared/data) and a clean skeleton registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Triton decides between compiled and interpreted kernels when a kernel is decorated, i.e. at the
# first import of posebh_cli.ops.sinkhorn_triton, whichever test triggers it. Without a GPU the
# kernels can only run in the interpreter, so choose it before any test module is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (third-party samples, never copied into the repo); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _clean_skeleton_registry(monkeypatch):
    from posebh_cli.skeletons.registry import SKELETON_DIR_ENV, reset_registry

    monkeypatch.delenv(SKELETON_DIR_ENV, raising=False)
    reset_registry()
    yield
    reset_registry()
