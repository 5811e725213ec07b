"""`posebh prepare`: validate a dataset and write its prepared index per split (or generate the
synthetic dataset)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from posebh_cli.cli.console import console, error_console
from posebh_cli.cli.options import JsonOutput, OutDir
from posebh_cli.errors import PosebhError


def prepare_command(
    dataset: Annotated[str, typer.Argument(
        help="Format: coco, aic, mpii, ap10k, apt36k, apt36k_raw, coco_wholebody, interhand, "
             "onehand10k, ochuman, or synthetic.")],
    root: Annotated[Optional[Path], typer.Option(
        "--root", help="Dataset folder (annotation and image paths are relative to it).")] = None,
    ann: Annotated[Optional[str], typer.Option(
        "--ann", help="Annotation file under --root (default: the format's usual layout).")
    ] = None,
    images: Annotated[Optional[str], typer.Option(
        "--images", help="Image folder under --root; for synthetic: images per family.")
    ] = None,
    split: Annotated[Optional[list[str]], typer.Option(
        "--split", help="Split(s) to prepare (repeatable; default: every split found).")
    ] = None,
    out: OutDir = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Dataset name in the index file names (default: the format).")] = None,
    skeleton: Annotated[Optional[str], typer.Option(
        "--skeleton", help="Skeleton the keypoints follow (default: the format's).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Drop and count malformed records instead of stopping.")
    ] = False,
    check_images: Annotated[bool, typer.Option(
        "--check-images", help="Decode every image (slow) to catch corrupt files.")] = False,
    seed: Annotated[int, typer.Option(
        "--seed", help="APT-36K video split seed; synthetic generator seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="synthetic: replace an existing output folder.")] = False,
    json_output: JsonOutput = False,
) -> None:
    """Validate a dataset and write a compact prepared index per split (`<out>/<name>_<split>.npz`,
    default out: `<root>/.posebh`, where training looks first).

    Example: posebh prepare coco --root data/coco --split val
    Example: posebh prepare apt36k_raw --root data/apt36k --seed 0
    Example: posebh prepare synthetic --out data/synthetic --images 200
    """
    from posebh_cli.data.prepare import prepare_dataset, prepare_synthetic

    with _progress(enabled=not json_output) as progress:
        if dataset == "synthetic" and ann is None:
            if out is None:
                raise PosebhError("prepare synthetic: --out DIR is required")
            result, summaries = prepare_synthetic(
                out, images_per_family=_images_per_family(images), seed=seed,
                overwrite=overwrite, progress=progress)
        else:
            from posebh_cli.data.readers import get_reader

            get_reader(dataset)
            if root is None:
                raise PosebhError(f"prepare {dataset}: --root DIR is required")
            result = None
            summaries = prepare_dataset(
                dataset, root, ann=ann, images=images, splits=tuple(split or ()),
                out_dir=out, name=name, skeleton=skeleton, skip_invalid=skip_invalid,
                check_images=check_images, seed=seed, progress=progress)
    if json_output:
        payload = {"splits": [s.to_dict() for s in summaries]}
        if result is not None:
            payload["synthetic"] = result
        console.print_json(json.dumps(payload))
        return
    _print_summary(summaries)


def _images_per_family(images: str | None) -> int:
    if images is None:
        from posebh_cli.data.synthetic.generate import DEFAULT_IMAGES_PER_FAMILY

        return DEFAULT_IMAGES_PER_FAMILY
    try:
        return int(images)
    except ValueError:
        raise PosebhError(f"--images {images}: for synthetic, the number of images per "
                          "family (an integer >= 1)") from None


@contextmanager
def _progress(enabled: bool):
    """A rich progress bar on stderr, driven by progress(description, done, total)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=error_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update


def _print_summary(summaries) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="prepared")
    for column in ("dataset", "split", "skeleton", "images", "instances", "trainable",
                   "invalid images", "invalid records"):
        table.add_column(column, justify="right" if column in (
            "images", "instances", "trainable", "invalid images", "invalid records") else "left")
    for s in summaries:
        table.add_row(s.dataset, s.split, s.skeleton, str(s.images), str(s.instances),
                      str(s.trainable_instances), str(s.invalid_images),
                      str(s.invalid_instances))
    console.print(table)
    for s in summaries:
        console.print(f"wrote {escape(s.index_file)}", soft_wrap=True)
    by_skeleton: dict[str, list] = {}
    for s in summaries:
        by_skeleton.setdefault(s.skeleton, []).append(s)
    for skeleton, group in by_skeleton.items():
        joints = Table(title=f"labelled keypoints per joint ({skeleton})")
        joints.add_column("joint")
        for s in group:
            joints.add_column(f"{s.dataset} {s.split}", justify="right")
        for joint in group[0].labelled_per_joint:
            joints.add_row(joint, *(str(s.labelled_per_joint[joint]) for s in group))
        console.print(joints)
    for s in summaries:
        for problem in s.problems:
            console.print(f"[yellow]skipped:[/yellow] {escape(problem)}", soft_wrap=True)
