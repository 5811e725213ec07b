"""`posebh eval`: score keypoint predictions (METHOD.md §6).

Two paths, one scoring code:
- model-based: `--dataset NAME|all [--run DIR | --checkpoint FILE]` runs a trained model over a
  recipe dataset split through `engine.evaluate.evaluate_recipe_dataset`, the function training
  validation uses, so the numbers match the ones the training run reported;
- model-free: `--predictions RESULTS.json --ann GT.json --skeleton NAME` scores an existing COCO
  results file, wherever the predictions came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from posebh_cli.cli.options import Checkpoint, Device, JsonOutput, RunDir
from posebh_cli.errors import PosebhError

_USAGE = ("posebh eval: give --dataset NAME|all (evaluate a trained run), or give --predictions "
          "RESULTS.json --ann GT.json --skeleton NAME (score a COCO results file)")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _print_table(report: dict[str, Any]) -> None:
    from rich.table import Table

    from posebh_cli.cli.console import console

    table = Table(title=f"{report['skeleton']} ({report['family']}): "
                        f"{report['num_predictions']} predictions, "
                        f"{report['num_gt_instances']} GT instances")
    if "oks_parts" in report:
        parts = list(report["oks_parts"])
        table.add_column("OKS metric")
        for part in parts:
            table.add_column(part, justify="right")
        for name in report["oks"]:
            table.add_row(name, *(_fmt(report["oks_parts"][p][name]) for p in parts))
    else:
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in report.get("oks", {}).items():
            table.add_row(f"OKS {name}", _fmt(value))
        for name, value in report.get("pck", {}).items():
            if name != "per_keypoint":
                table.add_row(name, _fmt(value))
    console.print(table)


def eval_predictions(predictions: Path, ann: Path, skeleton: str, json_output: bool,
                     out: Path | None, *, metric: str = "auto", backend: str = "pycocotools",
                     rescore_nms: bool = False) -> dict[str, Any]:
    """Score a results file; print a table (or JSON); write the metrics JSON to `out`."""
    from posebh_cli.io.atomic import json_ready
    from posebh_cli.io.results import write_metrics
    from posebh_cli.metrics.score_results import score_results_file

    report = score_results_file(predictions, ann, skeleton, metric=metric, backend=backend,
                                postprocess=rescore_nms)
    if out is not None:
        write_metrics(out, report)
    if json_output:
        from posebh_cli.cli.console import console

        console.print_json(json.dumps(json_ready(report)))
    else:
        _print_table(report)
    return report




def _model_datasets(loaded, dataset: str, split: str | None):
    """The recipe datasets to evaluate and the split of each ('all' skips datasets without it)."""
    recipe = loaded.recipe
    if dataset != "all":
        if dataset not in loaded.types.datasets:
            raise PosebhError(f"--dataset {dataset}: the run {loaded.run_dir} has no head for it; "
                              f"its datasets: {loaded.describe_heads()} (or 'all')")
        config = recipe.dataset(dataset)
        chosen = split or recipe.eval.split
        config.split(chosen)  # a missing split is a user error naming the recipe key
        return [(config, chosen)]
    chosen = split or recipe.eval.split
    configs = [(d, chosen) for d in recipe.datasets if getattr(d, chosen) is not None]
    if not configs:
        raise PosebhError(f"--dataset all: no dataset of the run's recipe has a '{chosen}' split")
    return configs


def _with_det_threshold(config, split: str, threshold: float | None):
    import dataclasses

    if threshold is None:
        return config
    split_cfg = dataclasses.replace(config.split(split), det_score_threshold=threshold)
    return dataclasses.replace(config, **{split: split_cfg})


def eval_model(dataset: str, *, run: Path | None, checkpoint: Path | None, split: str | None,
               boxes: str | None, det_score_threshold: float | None, flip: bool | None,
               decoder: str | None, device: str, out: Path | None,
               json_output: bool) -> dict[str, Any]:
    """Evaluate a trained run on one recipe dataset (or all); print a table; write
    `<out>/<dataset>_<split>_results.json` (COCO results), `..._metrics.json` and `metrics.json`.

    out defaults to `<run dir>/eval`. Returns {dataset: metrics report}.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from posebh_cli.cli.console import console
    from posebh_cli.cli.train import resolve_device
    from posebh_cli.engine.evaluate import evaluate_recipe_dataset
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.engine.progress import validation_table
    from posebh_cli.io.atomic import json_ready
    from posebh_cli.io.results import write_coco_results, write_metrics

    if decoder not in (None, "heads", "prototypes"):
        raise PosebhError(f"--decoder {decoder}: expected heads or prototypes")
    if split not in (None, "val", "test"):
        raise PosebhError(f"--split {split}: expected val or test")
    if boxes not in (None, "gt") and dataset == "all":
        raise PosebhError("--boxes FILE: a detection file belongs to one dataset; give "
                          "--dataset NAME (with --dataset all only --boxes gt applies)")
    if boxes not in (None, "gt") and not Path(boxes).is_file():
        raise PosebhError(f"--boxes {boxes}: detection file not found")
    torch_device = resolve_device(device)
    loaded = load_run(run, checkpoint, torch_device)
    if decoder == "prototypes" and loaded.model.prototype_table is None:
        raise PosebhError(f"--decoder prototypes: the run {loaded.run_dir} has no prototype "
                          "table (model.embedding_dim = 0); use --decoder heads")
    targets = _model_datasets(loaded, dataset, split)
    out_dir = Path(out) if out is not None else loaded.run_dir / "eval"
    reports: dict[str, Any] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=json_output) as progress:
        for config, chosen in targets:
            task = progress.add_task(f"{config.name} {chosen}", total=None)

            def advance(done: int, total: int, task=task) -> None:
                progress.update(task, completed=done, total=total)

            report = evaluate_recipe_dataset(
                loaded.model, loaded.recipe, loaded.types,
                _with_det_threshold(config, chosen, det_score_threshold), chosen,
                device=torch_device, flip_test=flip, decoder=decoder, boxes=boxes,
                progress=advance, return_records=True)
            records = report.pop("records")
            stem = f"{config.name}_{chosen}"
            write_coco_results(out_dir / f"{stem}_results.json", records)
            report.update(run=str(loaded.run_dir), step=loaded.info.get("step"),
                          results_file=str(out_dir / f"{stem}_results.json"))
            write_metrics(out_dir / f"{stem}_metrics.json", report)
            reports[config.name] = report
    write_metrics(out_dir / "metrics.json", reports)
    if json_output:
        console.print_json(json.dumps(json_ready(reports)))
        return reports
    title = (f"{loaded.run_dir.name} (step {loaded.info.get('step')}): "
             f"{', '.join(sorted({c for _, c in targets}))} split")
    console.print(validation_table(title, reports))
    total = sum(r["instances"] for r in reports.values())
    seconds = sum(r["instances"] / max(r["images_per_second"], 1e-9) for r in reports.values())
    console.print(f"{total} instances at {total / max(seconds, 1e-9):.1f} images/s on "
                  f"{torch_device}; results and metrics in {out_dir}", markup=False)
    return reports


def eval_command(
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", help="Recipe dataset of the run to evaluate, or 'all'.")] = None,
    run: RunDir = None,
    checkpoint: Checkpoint = None,
    split: Annotated[Optional[str], typer.Option(
        "--split", help="val or test (default: the recipe's eval.split).")] = None,
    boxes: Annotated[Optional[str], typer.Option(
        "--boxes", help="gt, or a COCO detection results JSON (default: the recipe's "
                        "boxes for the split).")] = None,
    det_score_threshold: Annotated[Optional[float], typer.Option(
        "--det-score-threshold", min=0.0, max=1.0,
        help="Drop detection boxes scoring below this (default: the recipe's).")] = None,
    flip: Annotated[Optional[bool], typer.Option(
        "--flip/--no-flip", help="Flip test (default: the recipe's eval.flip_test).")] = None,
    decoder: Annotated[Optional[str], typer.Option(
        "--decoder", help="heads (per-dataset heads) or prototypes (prototype heatmaps); "
                          "default: the recipe's.")] = None,
    device: Device = "auto",
    predictions: Annotated[Optional[Path], typer.Option(
        "--predictions", help="Model-free: a COCO keypoint results JSON [{image_id, "
                              "category_id, keypoints: flat x,y,score * K, score}].")] = None,
    ann: Annotated[Optional[Path], typer.Option(
        "--ann", help="Model-free: COCO-style ground-truth JSON.")] = None,
    skeleton: Annotated[Optional[str], typer.Option(
        "--skeleton", help="Model-free: skeleton of the keypoints, e.g. coco, ap10k, "
                           "coco_wholebody, onehand10k (see `posebh skeletons`).")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", help="Model-free: auto (OKS AP, or PCK/AUC/EPE for hands), oks or pck."
    )] = "auto",
    backend: Annotated[str, typer.Option(
        "--backend", help="Model-free OKS AP engine: pycocotools (reference) or fast (same "
                          "numbers, vectorised).")] = "pycocotools",
    rescore_nms: Annotated[bool, typer.Option(
        "--rescore-nms", help="Model-free: apply the reference rescoring (box x mean keypoint "
                              "score > 0.2) and OKS-NMS (0.9) before OKS AP.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="With --dataset: output folder (default <run>/eval). With "
                      "--predictions: also write the metrics to this JSON file.")] = None,
    json_output: JsonOutput = False,
) -> None:
    """Evaluate a trained run on recipe datasets, or score a COCO results file.

    Examples: posebh eval --dataset all ; posebh eval --dataset apt36k --split test --no-flip ;
    posebh eval --predictions results.json --ann person_keypoints_val2017.json --skeleton coco
    """
    if dataset is not None:
        if predictions is not None or ann is not None or skeleton is not None:
            raise PosebhError("--dataset evaluates a run; --predictions/--ann/--skeleton score "
                              "a results file: give one or the other")
        eval_model(dataset, run=run, checkpoint=checkpoint, split=split, boxes=boxes,
                   det_score_threshold=det_score_threshold, flip=flip, decoder=decoder,
                   device=device, out=out, json_output=json_output)
        return
    if predictions is None:
        raise PosebhError(_USAGE)
    if ann is None or skeleton is None:
        raise PosebhError(f"{_USAGE}; missing {'--ann' if ann is None else '--skeleton'}")
    eval_predictions(predictions, ann, skeleton, json_output, out, metric=metric,
                     backend=backend, rescore_nms=rescore_nms)
