"""`posebh train RECIPE`: train a PoseBH model through the recipe's stages."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from posebh_cli.cli.console import console
from posebh_cli.cli.options import Device, Overrides


def resolve_device(name: str):
    import torch

    from posebh_cli.errors import PosebhError

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PosebhError(f"--device {name}: CUDA is not available on this machine; "
                          "use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise PosebhError(f"--device {name}: expected cpu, cuda, cuda:N or auto") from None


def train_command(
    recipe_path: Annotated[Path, typer.Argument(metavar="RECIPE", help="Recipe TOML file.")],
    overrides: Overrides = None,
    run_dir: Annotated[Optional[Path], typer.Option(
        "--run-dir", help="Run directory (default: <output_dir>/<recipe name>).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --run-dir from its last checkpoint.")] = False,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", min=1, help="Stop after this many steps in total (smoke tests).")] = None,
    device: Device = "auto",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start afresh in a run directory that already holds a run.")] = False,
    validate: Annotated[bool, typer.Option(
        "--validate/--no-validate", help="Validate every dataset at each stage end.")] = True,
) -> None:
    """Train a model across the recipe's datasets and stages.

    Example: posebh train recipes/vitb_mdt.toml --set train.batch_size=64
    """
    import torch

    from posebh_cli.engine import run_dir as rd
    from posebh_cli.engine.distributed import init_distributed, shutdown
    from posebh_cli.engine.progress import TrainProgress
    from posebh_cli.engine.tensorboard_log import TENSORBOARD_DIR
    from posebh_cli.engine.trainer import Trainer
    from posebh_cli.errors import PosebhError
    from posebh_cli.io.atomic import atomic_write_text
    from posebh_cli.recipe import load_recipe

    recipe = load_recipe(recipe_path, overrides or []).with_absolute_paths()
    target = Path(run_dir) if run_dir else Path(recipe.output_dir) / recipe.name
    torch_device = resolve_device(device)
    dist = init_distributed(torch_device.type)
    if dist.enabled and torch_device.type == "cuda":
        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    if resume and not (target / rd.TRAINER_STATE_FILE).is_file():
        raise PosebhError(f"--resume: {target} has no {rd.TRAINER_STATE_FILE} to resume from")
    if resume and overwrite:
        raise PosebhError("--resume and --overwrite exclude each other")
    if not resume and (target / rd.WEIGHTS_FILE).exists():
        if not overwrite:
            raise PosebhError(f"{target} already holds a run; pass --resume to continue it, "
                              "--overwrite to start afresh, or --run-dir NEW_DIR")
        if dist.is_main:
            for name in (rd.WEIGHTS_FILE, rd.TRAINER_STATE_FILE, rd.RUN_INFO_FILE,
                         rd.METRICS_FILE):
                (target / name).unlink(missing_ok=True)
            shutil.rmtree(target / TENSORBOARD_DIR, ignore_errors=True)
    if dist.is_main:
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target / rd.RECIPE_FILE, recipe.to_toml())
    torch.manual_seed(recipe.seed)
    torch.set_float32_matmul_precision("high")
    progress = TrainProgress(console, enabled=dist.is_main,
                             log_every=recipe.train.log_every)
    try:
        trainer = Trainer(recipe, target, torch_device, dist, max_steps=max_steps,
                          hooks=progress.hooks(), validate=validate, resuming=resume)
        if resume:
            trainer.resume()
        if dist.is_main:
            rd.point_latest_at(target)
        with progress:
            state = trainer.run()
    finally:
        shutdown(dist)
    if dist.is_main:
        console.print(f"[green]done[/green]: step {state.step} of {trainer.total_steps}; "
                      f"run directory {escape(str(target))}")
