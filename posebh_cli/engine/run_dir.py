"""Run directories (DESIGN.md): where a training run keeps its recipe, weights and logs.

    runs/<recipe-name>/recipe.resolved.toml   model.safetensors   run.json
                       trainer_state.pt        metrics.csv
    runs/latest -> <recipe-name>   (so `posebh eval --dataset apt36k` needs no path)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from posebh_cli.errors import PosebhError

RECIPE_FILE = "recipe.resolved.toml"
WEIGHTS_FILE = "model.safetensors"
RUN_INFO_FILE = "run.json"
TRAINER_STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.csv"
LATEST_LINK = "latest"


def point_latest_at(run_dir: Path) -> None:
    """Atomically repoint `<parent>/latest` at `run_dir` (a relative symlink)."""
    run_dir = Path(run_dir)
    link = run_dir.parent / LATEST_LINK
    tmp = run_dir.parent / f".{LATEST_LINK}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        # File systems without symlinks: a one-line text file naming the run directory.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        from posebh_cli.io.atomic import atomic_write_text

        if link.is_symlink() or link.is_file():
            link.unlink()
        atomic_write_text(link, run_dir.name + "\n")


def resolve_run_dir(run: Path | None = None, runs_root: Path = Path("runs")) -> Path:
    """The run directory to use: `run` when given, else `runs/latest`."""
    if run is None:
        link = runs_root / LATEST_LINK
        if link.is_symlink() or link.is_dir():
            run = link.resolve()
        elif link.is_file():
            run = runs_root / link.read_text().strip()
        else:
            raise PosebhError(f"no run given and {link} does not exist: train first "
                              "(posebh train RECIPE) or pass --run DIR / --checkpoint FILE")
    run = Path(run)
    if not run.is_dir():
        raise PosebhError(f"--run {run}: not a run directory")
    if not (run / WEIGHTS_FILE).is_file():
        raise PosebhError(f"{run}: no {WEIGHTS_FILE} in this run directory (did training save "
                          "a checkpoint yet?)")
    return run
