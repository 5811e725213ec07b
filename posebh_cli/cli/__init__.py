"""The `posebh` command line: a Typer app whose commands call the library.

Commands import their heavy dependencies (torch, OpenCV, pycocotools) inside the function body,
so `posebh --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from posebh_cli import __version__
from posebh_cli.cli.app_group import PosebhGroup
from posebh_cli.cli.recipe import recipe_app
from posebh_cli.cli.skeletons import skeletons_app

app = typer.Typer(
    cls=PosebhGroup,
    name="posebh",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Multi-dataset, multi-skeleton pose estimation (PoseBH): prepare data, train one model "
         "across skeletons, evaluate, predict, and inspect keypoint prototypes.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"posebh {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Show the version.")] = None,
    skeleton_dir: Annotated[Optional[list[Path]], typer.Option(
        "--skeleton-dir", help="Folder of extra skeleton TOML files (repeatable; also "
                               "POSEBH_SKELETON_DIR).")] = None,
) -> None:
    if skeleton_dir:
        from posebh_cli.skeletons import add_skeleton_dirs

        add_skeleton_dirs(skeleton_dir)


# Each command module imports its heavy dependencies inside the command, so these are cheap.
from posebh_cli.cli import (  # noqa: E402
    cluster,
    evaluate,
    import_export,
    predict,
    prepare,
    train,
    visualize,
)

app.command("prepare")(prepare.prepare_command)
app.command("train")(train.train_command)
app.command("eval")(evaluate.eval_command)
app.command("predict")(predict.predict_command)
app.command("visualize-prototypes")(visualize.visualize_prototypes_command)
app.command("cluster")(cluster.cluster_command)
app.command("import-checkpoint")(import_export.import_checkpoint_command)
app.command("export")(import_export.export_command)
app.add_typer(skeletons_app, name="skeletons")
app.add_typer(recipe_app, name="recipe")
