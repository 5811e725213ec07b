"""`posebh import-checkpoint` (ViTPose / ViTPose++ / PoseBH mmpose files -> a run directory) and
`posebh export` (one dataset of a run -> TorchScript or ONNX)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from posebh_cli.cli.options import Checkpoint, JsonOutput, Overrides, RunDir


def _print_import(imported: Any, out: Path, seconds: float) -> None:
    from rich.table import Table

    from posebh_cli.cli.console import console

    layout = imported.layout
    experts = f", {layout.num_experts} experts of {layout.expert_dim} rows" \
        if layout.num_experts else ""
    console.print(f"[bold]{escape(imported.source.name)}[/bold]: {layout.kind} ViT-{imported.arch} "
                  f"(width {layout.embed_dim}, depth {layout.depth}{experts}), input "
                  f"{layout.input_size[0]}x{layout.input_size[1]}")
    table = Table("expert/head", "dataset", "skeleton", "keypoints")
    for i, (name, skeleton) in enumerate(zip(imported.types.datasets, imported.types.skeletons)):
        table.add_row(str(i), name, skeleton.name, str(skeleton.num_keypoints))
    console.print(table)
    if layout.prototypes is not None:
        console.print(f"prototype table {tuple(layout.prototypes)} imported")
    for note in imported.notes:
        console.print(f"[yellow]note[/yellow]: {note}")
    if imported.initialised:
        parts = sorted({k.split(".")[0] for k in imported.initialised})
        console.print(f"left at the recipe's init (not in the file): {', '.join(parts)} "
                      f"({len(imported.initialised)} tensors)")
    if imported.unmapped:
        shown = ", ".join(imported.unmapped[:5])
        more = f" and {len(imported.unmapped) - 5} more (run.json lists all)" \
            if len(imported.unmapped) > 5 else ""
        console.print(f"[yellow]unmapped file keys[/yellow] ({len(imported.unmapped)}): "
                      f"{shown}{more}")
    else:
        console.print("every file tensor was mapped")
    console.print(f"[green]done[/green] in {seconds:.1f} s: run directory {escape(str(out))}")


def import_checkpoint_command(
    checkpoint_file: Annotated[Path, typer.Argument(
        metavar="FILE", help="mmpose checkpoint (.pth) of ViTPose, ViTPose++ or PoseBH.")],
    arch: Annotated[Optional[str], typer.Option(
        "--arch", help="vits, vitb, vitl or vith (default: from the file's width and depth).")]
        = None,
    datasets: Annotated[Optional[str], typer.Option(
        "--datasets", help="Dataset names in expert/head order, NAME or NAME:SKELETON, comma "
                           "separated (default: the 6 reference datasets for 6 heads, coco for "
                           "one).")] = None,
    recipe: Annotated[Optional[Path], typer.Option(
        "--recipe", help="Take the datasets (in expert order) and training settings from this "
                         "recipe; the model section comes from the checkpoint.")] = None,
    overrides: Overrides = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Run directory to write (default: runs/<file name>).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a run already in --out.")] = False,
    json_output: JsonOutput = False,
) -> None:
    """Import a ViTPose / ViTPose++ / PoseBH mmpose checkpoint as a posebh run directory.

    The run directory (recipe.resolved.toml, model.safetensors, run.json) works with
    `posebh eval`, `predict`, `export` and as a start for training.

    Example: posebh import-checkpoint vitpose+_base.pth --arch vitb --out runs/vitpose_plus_b
    """
    import time

    from posebh_cli.io.mmpose_run import import_checkpoint

    start = time.perf_counter()
    target = out if out is not None else Path("runs") / checkpoint_file.stem
    imported = import_checkpoint(checkpoint_file, target, arch=arch, datasets=datasets,
                                 recipe=recipe, overrides=overrides or [], force=force)
    seconds = time.perf_counter() - start
    if json_output:
        from posebh_cli.cli.console import console
        from posebh_cli.io.mmpose_run import imported_run_info

        info = imported_run_info(imported)
        console.print_json(json.dumps({"run_dir": str(target), "seconds": seconds,
                                       "datasets": info["datasets"], **info["import"]}))
        return
    _print_import(imported, target, seconds)


def _default_export_path(run_dir: Path, dataset: str, fmt: str) -> Path:
    return run_dir / "export" / f"{dataset}.{'onnx' if fmt == 'onnx' else 'pt'}"


def export_command(
    dataset: Annotated[str, typer.Option(
        "--dataset", help="Dataset of the run whose expert and head are exported.")],
    fmt: Annotated[str, typer.Option(
        "--format", help="onnx or torchscript.")],
    run: RunDir = None,
    checkpoint: Checkpoint = None,
    dynamic_batch: Annotated[bool, typer.Option(
        "--dynamic-batch", help="Leave the batch axis free (default: fixed --batch-size).")]
        = False,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Batch size of the exported graph (the example batch with "
                                    "--dynamic-batch).")] = 1,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="File to write (default: <run>/export/<dataset>.onnx|.pt).")] = None,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Compare the exported file with PyTorch (ONNX: needs "
                                   "onnxruntime, skipped without it).")] = True,
    json_output: JsonOutput = False,
) -> None:
    """Export one dataset of a run as a plain ViT + its heatmap head (TorchScript or ONNX).

    The dataset's ViTPose++ expert is merged into fc2 (a plain ViT for that dataset). Input:
    images (B, 3, H, W) float32, RGB, ImageNet-normalised; output: heatmaps (B, K, h, w).

    Example: posebh export --run runs/vitpose_plus_b --dataset ap10k --format onnx
    """
    from posebh_cli.cli.console import console
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.errors import PosebhError
    from posebh_cli.models.export import (
        EXPORT_FORMATS,
        ExportSpec,
        check_parity,
        export_dataset_model,
        export_metadata,
        onnx_available,
        split_dataset,
    )

    if fmt not in EXPORT_FORMATS:
        raise PosebhError(f"--format {fmt}: expected one of {list(EXPORT_FORMATS)}")
    if fmt == "onnx" and not onnx_available():
        raise PosebhError("ONNX export needs the onnx package: pip install posebh[onnx]")
    if checkpoint is not None and checkpoint.suffix != ".safetensors" and checkpoint.is_file():
        raise PosebhError(f"--checkpoint {checkpoint}: expected a posebh model.safetensors; "
                          "import an mmpose checkpoint first (posebh import-checkpoint FILE)")
    loaded = load_run(run, checkpoint, "cpu")
    if dataset not in loaded.dataset_names:
        raise PosebhError(f"--dataset {dataset}: not a dataset of this run; it has "
                          f"{loaded.describe_heads()}")
    recipe = loaded.recipe
    input_size = tuple(recipe.model.input_size)
    heatmap_size = tuple(recipe.model.heatmap_size)
    metadata = export_metadata(dataset, loaded.types.skeleton(dataset), input_size,
                               heatmap_size, recipe.dataset(dataset).encoding,
                               str(loaded.weights.resolve()))
    spec = ExportSpec(input_size, batch_size, dynamic_batch, metadata)
    split = split_dataset(loaded.model, dataset)
    target = out if out is not None else _default_export_path(loaded.run_dir, dataset, fmt)
    export_dataset_model(split, target, fmt, spec)
    parity = check_parity(split, target, fmt, spec) if check else None
    keypoints = loaded.types.num_keypoints(dataset)
    batch = "B" if dynamic_batch else str(batch_size)
    report = {
        "file": str(target), "format": fmt, "dataset": dataset, "bytes": target.stat().st_size,
        "input": [batch, 3, *input_size], "output": [batch, keypoints, *heatmap_size],
        "parity": None if parity is None else {
            "checked": parity.checked, "max_abs_diff": parity.max_abs_diff,
            "batch_size": parity.batch_size, "ok": parity.ok(), "reason": parity.reason},
    }
    if json_output:
        console.print_json(json.dumps(report))
    else:
        console.print(f"[green]exported[/green] {dataset} ({fmt}) to {escape(str(target))} "
                      f"({report['bytes'] / 2**20:.1f} MB): images {tuple(report['input'])} -> "
                      f"heatmaps {tuple(report['output'])}")
        if parity is None:
            console.print("parity check skipped (--no-check)")
        elif not parity.checked:
            console.print(f"parity check skipped: {parity.reason}")
        else:
            status = "[green]ok[/green]" if parity.ok() else "[red]FAILED[/red]"
            console.print(f"parity vs PyTorch {status}: max |diff| {parity.max_abs_diff:.2e} "
                          f"on a batch of {parity.batch_size}")
    if parity is not None and not parity.ok():
        raise typer.Exit(1)
