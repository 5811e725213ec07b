"""A tiny trained run shared by the CLI tests of eval / predict / visualize-prototypes.

Import the fixture into a test module with `from engine_fixtures import tiny_run  # noqa: F401`
(tests/ is on sys.path because tests/conftest.py lives there). The session fixture generates a
6-images-per-family synthetic dataset, writes a recipe with one 3-step stage that learns the
prototypes (fp32, batch 8, no workers; one validation at the stage end, as `posebh eval` must
reproduce it) and trains it through `posebh train` (CliRunner), about 4 s on 2 idle cores.

Layout under the fixture's folder:
    data/                  synthetic dataset (human: coco, animal: ap10k, hand: onehand10k)
    tiny.toml              the recipe
    runs/tiny_test/        the run directory (runs/latest points at it)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_recipes import dataset_blocks

TINY_RECIPE = """\
name = "tiny_test"
seed = 0

[model]
backbone = "tiny"
input_size = [64, 48]
heatmap_size = [16, 12]
patch_size = 16
moe = true
expert_dim = 16
drop_path = 0.0
head_channels = 16
embed_head_channels = 16
embedding_dim = 8
prototypes_per_type = 2

[loss]
keypoint = "softmax_ce"
sigma = 1.0

[optimizer]
lr = 1e-3
warmup_iters = 0

[train]
batch_size = 8
workers = 0
precision = "fp32"
checkpoint_every = 0
log_every = 1

[eval]
flip_test = true
heatmap_decoder = "dark_udp"
batch_size = 16
{datasets}
[[stages]]
name = "learn"
steps = 3
prototypes = "learn"
"""

@dataclass(frozen=True)
class TinyRun:
    root: Path  # the fixture's folder (chdir here to make runs/latest the default run)
    data: Path  # the synthetic dataset
    recipe: Path
    run_dir: Path


def tiny_recipe_text(data_root: Path) -> str:
    return TINY_RECIPE.format(datasets=dataset_blocks(data_root))


def train_tiny_run(root: Path) -> TinyRun:
    """Generate the data, write the recipe and train it under `root`."""
    from typer.testing import CliRunner

    from posebh_cli.cli import app
    from posebh_cli.data.synthetic.generate import generate_synthetic

    data = root / "data"
    generate_synthetic(data, images_per_family=6, workers=1)
    recipe = root / "tiny.toml"
    recipe.write_text(tiny_recipe_text(data))
    run_dir = root / "runs" / "tiny_test"
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(run_dir),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return TinyRun(root, data, recipe, run_dir)


_TRAINED: dict[str, TinyRun] = {}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    # Each test module that imports this fixture gets its own fixture definition, so a session
    # scope alone would train once per module: the module-level cache trains once per session.
    if "run" not in _TRAINED:
        _TRAINED["run"] = train_tiny_run(tmp_path_factory.mktemp("tiny_run"))
    return _TRAINED["run"]
