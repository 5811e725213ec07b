"""`posebh recipe check`: validate a recipe and print it resolved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from posebh_cli.cli.app_group import PosebhGroup
from posebh_cli.cli.console import console
from posebh_cli.cli.options import JsonOutput, Overrides

recipe_app = typer.Typer(cls=PosebhGroup, no_args_is_help=True,
                         help="Work with TOML recipes (`check` validates and resolves one).")


@recipe_app.command("check")
def check_recipe(
    path: Annotated[Path, typer.Argument(help="Recipe TOML file.")],
    overrides: Overrides = None,
    json_output: JsonOutput = False,
) -> None:
    """Validate a recipe (with --set overrides) and print the resolved recipe.

    Example: posebh recipe check recipes/vitb_mdt.toml --set train.batch_size=32
    """
    from rich.syntax import Syntax

    from posebh_cli.recipe import load_recipe
    from posebh_cli.skeletons import KeypointTypeTable

    recipe = load_recipe(path, overrides or [])
    types = KeypointTypeTable.from_pairs([(d.name, d.skeleton) for d in recipe.datasets])
    if json_output:
        console.print_json(json.dumps({"recipe": recipe.to_table(),
                                       "keypoint_types": types.to_dict()}))
        return
    console.print(Syntax(recipe.to_toml(), "toml", theme="ansi_dark", word_wrap=True))
    datasets = ", ".join(f"{d.name} ({d.skeleton}, {s.num_keypoints})"
                         for d, s in zip(recipe.datasets, types.skeletons))
    stages = ", ".join(f"{s.name} ({s.epochs:g} epochs)" if s.epochs else
                       f"{s.name} ({s.steps} steps)" for s in recipe.stages)
    console.print(f"[green]ok[/green] {escape(str(path))}: {len(recipe.datasets)} datasets: "
                  f"{datasets}; {types.num_types} keypoint types x "
                  f"{recipe.model.prototypes_per_type} prototypes; stages: {stages}")
