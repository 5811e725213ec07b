"""Engine test fixtures: one tiny synthetic dataset per session, tiny recipes in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_recipes import make_synthetic_root, recipe_text


@pytest.fixture(scope="module", autouse=True)
def _torch_globals():
    """One torch thread (two spinning threads double the CPU time of these tiny models on 2
    shared cores); `posebh train` in-process also sets the seed and the matmul precision."""
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    rng = torch.get_rng_state()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision(precision)
    torch.set_rng_state(rng)


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
