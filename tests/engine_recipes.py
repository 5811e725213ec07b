"""Tiny recipes for the engine and `posebh train` tests, written as TOML text.

The recipe is the smallest PoseBH that still exercises everything a real one does: three datasets
with different skeletons (COCO-17 human, AP-10K-17 animal, OneHand10K-21 hand), MoE experts,
prototypes, and three stages (learn prototypes; frozen prototypes + CSS; everything trained).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FAMILIES = {"human": "coco", "animal": "ap10k", "hand": "onehand10k"}
STAGE_STEPS = 3


def dataset_blocks(data_root: Path, datasets: tuple[str, ...] = tuple(FAMILIES)) -> str:
    """The [[datasets]] tables "synth_<family>" over the synthetic data in `data_root`."""
    return "".join(f"""
[[datasets]]
name = "synth_{family}"
skeleton = "{FAMILIES[family]}"
format = "synthetic"
root = "{data_root.as_posix()}"
encoding = "udp"
half_body = {"false" if family == "hand" else "true"}
train = {{ ann = "annotations/{family}_train.json", images = "images/{family}/train" }}
val = {{ ann = "annotations/{family}_val.json", images = "images/{family}/val" }}
""" for family in datasets)


def recipe_text(data_root: Path, *, name: str = "tiny_engine", stages: str | None = None,
                train_extra: str = "", optimizer_extra: str = "",
                datasets: tuple[str, ...] = tuple(FAMILIES)) -> str:
    """TOML of a tiny 3-dataset recipe over the synthetic data in `data_root`.

    stages: replaces the default three [[stages]] tables (each STAGE_STEPS steps).
    """
    if stages is None:
        stages = f"""
[[stages]]
name = "learn"
steps = {STAGE_STEPS}
train = ["backbone", "keypoint_heads", "embedding_head"]
prototypes = "learn"

[[stages]]
name = "css"
steps = {STAGE_STEPS}
train = ["keypoint_heads"]
prototypes = "frozen"
css = true
lr_scale = 0.5

[[stages]]
name = "all"
steps = {STAGE_STEPS}
train = ["backbone", "keypoint_heads", "embedding_head"]
prototypes = "learn"
css = true
"""
    return f"""
name = "{name}"
seed = 3

[model]
backbone = "tiny"
input_size = [64, 48]
heatmap_size = [16, 12]
head_channels = 16
embed_head_channels = 16
embedding_dim = 8
expert_dim = 16
drop_path = 0.1   # > 0: resume must also restore the global RNG

[optimizer]
lr = 1e-3
warmup_iters = 2
{optimizer_extra}

[train]
batch_size = 4
workers = 0
precision = "fp32"
cache_images = true
log_every = 1
checkpoint_every = 2
{train_extra}

[eval]
batch_size = 8
{dataset_blocks(data_root, datasets)}
{stages}
"""


def tiny_recipe(**overrides):
    """A validated in-memory Recipe of the same tiny model (datasets need no files on disk)."""
    import tomllib

    from posebh_cli.recipe import recipe_from_table

    table = tomllib.loads(recipe_text(Path("/nonexistent")))
    for section, values in overrides.items():
        table.setdefault(section, {}).update(values)
    return recipe_from_table(table, "tiny.toml")


def make_synthetic_root(base: Path) -> Path:
    """A tiny synthetic dataset under base/data (6 train + 1 val image per family)."""
    from posebh_cli.data.synthetic.generate import generate_synthetic

    root = base / "data"
    generate_synthetic(root, images_per_family=6, workers=1)
    return root


@pytest.fixture(scope="module", autouse=True)
def single_thread_torch():
    """One torch thread for the importing test module (two spinning threads double the CPU time
    of these tiny models on 2 shared cores); `posebh train` in-process also sets the seed and
    the matmul precision, so all three are restored afterwards."""
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    rng = torch.get_rng_state()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision(precision)
    torch.set_rng_state(rng)
