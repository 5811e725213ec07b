"""`posebh cluster`: refresh a dataset's keypoint prototypes from its labelled keypoints, register
a new skeleton from a few labelled images, and group the prototype table into joint concepts.

Writes a new run directory (default `<run>_clustered/`: recipe, run.json with a "clustering"
section, model.safetensors, all atomic) and never touches the source unless `--in-place`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from posebh_cli.cli.options import Checkpoint, Device, JsonOutput, RunDir
from posebh_cli.errors import PosebhError

REPORT_FILE = "clustering_report.json"
_USAGE = ("give --dataset NAME (a dataset of the run), or --ann FILE --image-dir DIR "
          "--skeleton NAME --name NEW (register a new dataset), or --concepts C alone")


def _new_dataset_config(ann: Path, image_dir: Path, skeleton: str, name: str, fmt: str,
                        encoding: str | None, like_encoding: str):
    from posebh_cli.recipe import DATASET_FORMATS, ENCODINGS, DatasetConfig, SplitConfig
    from posebh_cli.skeletons import get_skeleton

    if not name.replace("_", "").replace("-", "").isalnum():
        raise PosebhError(f"--name {name!r}: use letters, digits, '_' or '-' only")
    get_skeleton(skeleton)  # unknown names: one line with close matches
    if fmt not in DATASET_FORMATS:
        raise PosebhError(f"--format {fmt!r}: expected one of {', '.join(DATASET_FORMATS)}")
    if encoding is not None and encoding not in ENCODINGS:
        raise PosebhError(f"--encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
    if not ann.is_file():
        raise PosebhError(f"--ann {ann}: annotation file not found")
    if not image_dir.is_dir():
        raise PosebhError(f"--image-dir {image_dir}: not a folder")
    ann, image_dir = ann.resolve(), image_dir.resolve()
    return DatasetConfig(name=name, skeleton=skeleton, format=fmt, root=str(ann.parent),
                         train=SplitConfig(ann=ann.name, images=str(image_dir)),
                         encoding=encoding or like_encoding)


def _output_paths(source_weights: Path, run_dir: Path, out: Path | None, in_place: bool,
                  overwrite: bool) -> Path:
    """Where the new weights go; refuses to overwrite the source or another run by accident."""
    from posebh_cli.engine.run_dir import WEIGHTS_FILE

    if in_place and out is not None:
        raise PosebhError("give --out FILE or --in-place, not both")
    if in_place:
        return source_weights
    target = Path(out) if out is not None else \
        run_dir.parent / f"{run_dir.name}_clustered" / WEIGHTS_FILE
    if target.suffix != ".safetensors":
        raise PosebhError(f"--out {target}: expected a .safetensors file name")
    if target.resolve() == source_weights.resolve():
        raise PosebhError(f"--out {target} is the source checkpoint; pass --in-place to "
                          "update the source run")
    if target.exists() and not overwrite:
        raise PosebhError(f"{target} already exists; pass --overwrite to replace it or "
                          "--out NEW_FILE")
    return target


def _print_summary(report: dict[str, Any]) -> None:
    from rich.table import Table

    from posebh_cli.cli.console import console

    refresh = report.get("refresh")
    if refresh:
        def mean(key: str) -> str:
            values = [r[key] for r in refresh["keypoints"] if r[key] is not None]
            return f"{sum(values) / len(values):.3f}" if values else "n/a"

        console.print(
            f"[bold]{refresh['dataset']}[/bold] ({refresh['skeleton']}"
            f"{', new dataset' if refresh['new_dataset'] else ''}): {refresh['instances']} "
            f"instances on {refresh['images']} images, {refresh['embeddings']} keypoint "
            f"embeddings; mean best |cos| {mean('similarity_before')} -> "
            f"{mean('similarity_after')}")
        if refresh["types_without_samples"]:
            console.print(f"[yellow]kept old prototypes (no labelled sample):[/yellow] "
                          f"{', '.join(refresh['types_without_samples'])}")
    concepts = report.get("concepts")
    if concepts:
        table = Table(title=f"{concepts['num_concepts']} joint concepts over "
                            f"{concepts['num_types']} keypoint types")
        for column in ("concept", "types", "skeletons", "members (|cos| to the concept)"):
            table.add_column(column, justify="right" if column == "types" else "left")
        for concept in concepts["concepts"]:
            members = ", ".join(f"{m['dataset']}/{m['keypoint']} ({m['similarity']:.2f})"
                                for m in concept["members"])
            table.add_row(str(concept["concept"]), str(concept["size"]),
                          ", ".join(concept["skeletons"]), members)
        console.print(table)
    if report.get("output"):
        console.print(f"[green]wrote[/green] {escape(str(report['output']))} and "
                      f"{escape(str(report['report']))}")
    else:
        console.print(f"[green]wrote[/green] {escape(str(report['report']))}")


def cluster_command(
    run: RunDir = None,
    checkpoint: Checkpoint = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", help="Dataset of the run whose prototypes are refreshed.")] = None,
    ann: Annotated[Optional[Path], typer.Option(
        "--ann", help="New dataset: annotation file (with --image-dir --skeleton --name).")
    ] = None,
    image_dir: Annotated[Optional[Path], typer.Option(
        "--image-dir", help="New dataset: folder of its images.")] = None,
    skeleton: Annotated[Optional[str], typer.Option(
        "--skeleton", help="New dataset: its skeleton (see `posebh skeletons`).")] = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="New dataset: the name it gets in the run (used by --skeleton/"
                       "--dataset in predict).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="New dataset: annotation reader (coco, synthetic, ...).")] = "coco",
    encoding: Annotated[Optional[str], typer.Option(
        "--encoding", help="New dataset: msra or udp (default: that of --like).")] = None,
    like: Annotated[Optional[str], typer.Option(
        "--like", help="New dataset: run dataset whose MoE expert and head deconvolutions it "
                       "copies (default: first dataset of the same skeleton family).")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="Split whose labelled keypoints are used (train, val, test).")
    ] = "train",
    images: Annotated[int, typer.Option(
        "--images", min=1, help="Use labelled instances from at most N images.")] = 300,
    concepts: Annotated[Optional[int], typer.Option(
        "--concepts", min=0, help="Number of joint concepts (default: keypoints of the "
                                  "largest skeleton; 0 skips the concept clustering).")] = None,
    init: Annotated[str, typer.Option(
        "--init", help="Start of the per-type clustering: kmeans++ or existing.")
    ] = "kmeans++",
    iters: Annotated[int, typer.Option("--iters", min=1, help="Clustering rounds.")] = 10,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="New weights file (default <run>_clustered/model.safetensors).")] = None,
    report_path: Annotated[Optional[Path], typer.Option(
        "--report", help="JSON report (default: clustering_report.json next to the weights).")
    ] = None,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Update the source run directory instead of writing a new one.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --out file.")] = False,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=1, help="Crops per forward pass (default: recipe eval batch).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Image choice and k-means++.")] = 0,
    device: Device = "auto",
    json_output: JsonOutput = False,
) -> None:
    """Refresh prototypes with balanced Sinkhorn clustering and report shared joint concepts.

    Example: posebh cluster --run runs/vitb_mdt --dataset apt36k --images 300 --concepts 20
    """
    new_dataset = any(v is not None for v in (ann, image_dir, skeleton, name))
    if dataset is not None and new_dataset:
        raise PosebhError("give --dataset NAME or the new-dataset options (--ann --image-dir "
                          "--skeleton --name), not both")
    if new_dataset:
        missing = [flag for flag, value in (("--ann", ann), ("--image-dir", image_dir),
                                            ("--skeleton", skeleton), ("--name", name))
                   if value is None]
        if missing:
            raise PosebhError(f"a new dataset needs --ann, --image-dir, --skeleton and --name; "
                              f"missing {', '.join(missing)}")
    elif dataset is None and not concepts:
        raise PosebhError(_USAGE)
    if split not in ("train", "val", "test"):
        raise PosebhError(f"--split {split!r}: expected train, val or test")
    if init not in ("kmeans++", "existing"):
        raise PosebhError(f"--init {init!r}: expected kmeans++ or existing")
    if new_dataset and split != "train":
        raise PosebhError("--split: a new dataset's --ann file is its train split")

    from posebh_cli.cli.train import resolve_device
    from posebh_cli.engine.load_run import load_run

    torch_device = resolve_device(device)
    loaded = load_run(run, checkpoint, torch_device)
    if loaded.model.prototype_table is None:
        raise PosebhError(f"{loaded.weights}: this model has no prototype table to cluster")
    from posebh_cli.engine.cluster_run import ClusterRequest, cluster_run

    request = ClusterRequest(dataset=dataset, split=split, max_images=images,
                             concepts=concepts, init=init, iters=iters, seed=seed,
                             batch_size=batch_size, device=torch_device)
    if new_dataset:
        like_name = like
        if like_name is None:
            from posebh_cli.engine.extend_run import default_like

            like_name = default_like(loaded.types, skeleton)
        like_encoding = loaded.recipe.dataset(like_name).encoding
        request.new_dataset = _new_dataset_config(ann, image_dir, skeleton, name, fmt, encoding,
                                                  like_encoding)
        request.like = like_name
    writes_weights = dataset is not None or new_dataset
    target = None
    if writes_weights:
        target = _output_paths(loaded.weights, loaded.run_dir, out, in_place, overwrite)
    elif in_place or out is not None:
        raise PosebhError("--out/--in-place need --dataset or a new dataset: --concepts alone "
                          "changes no weights")
    report_file = Path(report_path) if report_path is not None else \
        (target.parent if target is not None else loaded.weights.parent) / REPORT_FILE

    from posebh_cli.cli.console import console

    with _progress(console, enabled=not json_output) as update:
        report = cluster_run(loaded, request, target=target, report_file=report_file,
                             progress=update)
    if json_output:
        from posebh_cli.io.atomic import json_ready

        console.print_json(json.dumps(json_ready(report)))
    else:
        _print_summary(report)


class _progress:
    """A rich progress bar for the embedding pass; yields update(done, total)."""

    def __init__(self, console, enabled: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("embedding keypoints"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, disable=not enabled,
                            transient=True)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()

        def update(done: int, total: int) -> None:
            if self.task is None:
                self.task = self.bar.add_task("embed", total=total)
            self.bar.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)
