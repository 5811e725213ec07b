"""`posebh eval`: score keypoint predictions (METHOD.md §6).

Model-free path (this module): `--predictions RESULTS.json --ann GT.json --skeleton NAME`
scores an existing COCO results file, wherever the predictions came from. The model-based
options (`--dataset/--run/--checkpoint`) reuse the same scoring code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from posebh_cli.cli.options import JsonOutput
from posebh_cli.errors import PosebhError

_USAGE = ("posebh eval: give --predictions RESULTS.json --ann GT.json --skeleton NAME "
          "(a COCO results file scored against COCO-style ground truth)")


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
    from posebh_cli.io.results import json_ready, write_metrics
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


def eval_command(
    predictions: Annotated[Optional[Path], typer.Option(
        "--predictions", help="COCO keypoint results JSON: [{image_id, category_id, "
                              "keypoints: flat x,y,score * K, score}].")] = None,
    ann: Annotated[Optional[Path], typer.Option(
        "--ann", help="COCO-style ground-truth JSON (images, annotations, categories).")] = None,
    skeleton: Annotated[Optional[str], typer.Option(
        "--skeleton", help="Skeleton of the keypoints, e.g. coco, ap10k, coco_wholebody, "
                           "onehand10k (see `posebh skeletons`).")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", help="auto (OKS AP, or PCK/AUC/EPE for hands), oks or pck.")] = "auto",
    backend: Annotated[str, typer.Option(
        "--backend", help="OKS AP engine: pycocotools (reference) or fast (same numbers, "
                          "vectorised).")] = "pycocotools",
    rescore_nms: Annotated[bool, typer.Option(
        "--rescore-nms", help="Apply the reference rescoring (box x mean keypoint score "
                              "> 0.2) and OKS-NMS (0.9) before OKS AP.")] = False,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Also write the metrics to this JSON file.")] = None,
    json_output: JsonOutput = False,
) -> None:
    """Score keypoint predictions against ground truth (OKS AP/AR, or PCK/AUC/EPE for hands).

    Example: posebh eval --predictions results.json --ann person_keypoints_val2017.json
    --skeleton coco
    """
    if predictions is None:
        raise PosebhError(_USAGE)
    if ann is None or skeleton is None:
        raise PosebhError(f"{_USAGE}; missing {'--ann' if ann is None else '--skeleton'}")
    eval_predictions(predictions, ann, skeleton, json_output, out, metric=metric,
                     backend=backend, rescore_nms=rescore_nms)
