"""`posebh skeletons`: list the known skeletons or show one."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from posebh_cli.cli.app_group import PosebhGroup
from posebh_cli.cli.console import console
from posebh_cli.cli.options import JsonOutput

skeletons_app = typer.Typer(cls=PosebhGroup, invoke_without_command=True,
                            help="List the known skeletons, or show one with `show NAME`.")


@skeletons_app.callback()
def list_skeletons(ctx: typer.Context, json_output: JsonOutput = False) -> None:
    """List skeletons: name, family, keypoint count, source.

    Example: posebh skeletons
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from posebh_cli.skeletons import all_skeletons

    skeletons = all_skeletons()
    if json_output:
        rows = [{"name": s.name, "family": s.family, "keypoints": s.num_keypoints,
                 "description": s.description, "source": s.source} for s in skeletons.values()]
        console.print_json(json.dumps(rows))
        return
    table = Table(title="skeletons")
    for column in ("name", "family", "K", "description"):
        table.add_column(column, justify="right" if column == "K" else "left")
    for s in skeletons.values():
        table.add_row(s.name, s.family, str(s.num_keypoints), s.description)
    console.print(table)
    console.print("Families (for --skeleton): human, animal, hand, wholebody. "
                  "Add your own with --skeleton-dir DIR or POSEBH_SKELETON_DIR.")


@skeletons_app.command("show")
def show_skeleton(
    name: Annotated[str, typer.Argument(help="Skeleton name, e.g. ap10k.")],
    json_output: JsonOutput = False,
    keypoint: Annotated[Optional[str], typer.Option(help="Show one keypoint only.")] = None,
) -> None:
    """Show one skeleton: keypoints, flip partners, OKS sigmas, links, colours.

    Example: posebh skeletons show ap10k
    """
    from rich.table import Table

    from posebh_cli.skeletons import get_skeleton

    skeleton = get_skeleton(name)
    if json_output:
        console.print_json(json.dumps(skeleton.to_dict()))
        return
    rows = range(skeleton.num_keypoints)
    if keypoint is not None:
        rows = [skeleton.index(keypoint)]
    upper = set(skeleton.upper_body)
    table = Table(title=f"{skeleton.name} ({skeleton.family}, {skeleton.num_keypoints} keypoints)"
                  f" - {skeleton.source}")
    for column in ("id", "keypoint", "flip", "sigma", "body", "colour"):
        table.add_column(column)
    for i in rows:
        mirror = int(skeleton.flip_index[i])
        r, g, b = (int(v) for v in skeleton.keypoint_colors[i])
        table.add_row(str(i), skeleton.keypoints[i],
                      skeleton.keypoints[mirror] if mirror != i else "-",
                      f"{skeleton.sigmas[i]:.3f}", "upper" if i in upper else "lower",
                      f"[rgb({r},{g},{b})]■[/] {r},{g},{b}")
    console.print(table)
    links = ", ".join(f"{skeleton.keypoints[a]}-{skeleton.keypoints[b]}"
                      for a, b in skeleton.links)
    console.print(f"[bold]links[/bold] ({len(skeleton.links)}): {links}")
    if skeleton.aliases:
        console.print(f"[bold]aliases[/bold]: {', '.join(skeleton.aliases)}")
