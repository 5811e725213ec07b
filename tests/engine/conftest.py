"""Engine test fixtures: one tiny synthetic dataset per session, tiny recipes in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_recipes import (  # noqa: F401  (autouse fixture)
    make_synthetic_root,
    recipe_text,
    single_thread_torch,
)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Synthetic data: annotations/{family}_{split}.json, images/{family}/{split}/."""
    return make_synthetic_root(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def write_recipe(synthetic_root, tmp_path):
    """write_recipe(**recipe_text kwargs) -> path of a recipe TOML in tmp_path."""
    counter = iter(range(1000))

    def write(**kwargs) -> Path:
        path = tmp_path / f"recipe_{next(counter)}.toml"
        path.write_text(recipe_text(synthetic_root, **kwargs), encoding="utf-8")
        return path

    return write
