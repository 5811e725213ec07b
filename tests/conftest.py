"""Shared fixtures: the real sample data folder (../shared/data) and a clean skeleton registry."""

from __future__ import annotations

from pathlib import Path

import pytest

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
