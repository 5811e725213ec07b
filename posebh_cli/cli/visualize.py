"""`posebh visualize-prototypes`: figures and correspondences of a run's prototype table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from posebh_cli.cli.options import Checkpoint, Device, JsonOutput, RunDir
from posebh_cli.errors import PosebhError


def _write_png(path: Path, image) -> str:
    import cv2

    from posebh_cli.io.atomic import atomic_write_bytes

    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"cannot encode {path}")
    atomic_write_bytes(path, encoded.tobytes())
    return str(path)


def visualize_prototypes(loaded, datasets: list[str], out: Path, *, image: Path | None,
                         device, expected: Path | None = None,
                         expected_pairs: list | None = None) -> dict[str, Any]:
    """Write the figures and correspondence.json; returns {"files", "pairs"} and, given the
    pairs read from an expected correspondence file, "expected" (viz/correspondence_check.py)."""
    import numpy as np

    from posebh_cli.viz import figures
    from posebh_cli.viz import prototype_analysis as pa

    table = loaded.model.prototype_table
    if table is None:
        raise PosebhError(f"{loaded.run_dir}: this model has no prototype table "
                          "(model.embedding_dim = 0): nothing to visualise")
    prototypes = table.prototypes.detach().float().cpu().numpy()  # (J, M, F)
    types = loaded.types
    ids = {d: types.global_ids(d) for d in datasets}
    names = {d: list(types.skeleton(d).keypoints) for d in datasets}
    files: list[str] = []
    pairs: list[dict[str, Any]] = []
    # Every ordered pair of distinct skeletons (a single one is compared with itself).
    ordered = [(a, b) for a in datasets for b in datasets if a != b] or [(datasets[0],) * 2]
    for a, b in ordered:
        similarity = pa.type_similarity(prototypes, ids[a], ids[b])
        pairs.append({"a": a, "b": b, "skeleton_a": types.skeleton(a).name,
                      "skeleton_b": types.skeleton(b).name,
                      "matches": pa.correspondences(similarity, names[a], names[b])})
        if datasets.index(a) < datasets.index(b) or a == b:
            files.append(_write_png(out / f"similarity_{a}_vs_{b}.png", figures.matrix_figure(
                similarity, names[a], names[b], f"prototype similarity: {a} (rows) vs {b}",
                cell=22)))
    every = np.concatenate([ids[d] for d in datasets])
    labels = [f"{d}/{k}" for d in datasets for k in names[d]]
    starts = np.cumsum([0] + [len(ids[d]) for d in datasets])[1:-1].tolist()
    files.append(_write_png(out / "similarity_all.png", figures.matrix_figure(
        pa.type_similarity(prototypes, every, every), labels, labels,
        "prototype similarity max |cos| (all selected keypoint types)", cell=12,
        row_groups=starts, col_groups=starts)))
    points = pa.sign_canonical(prototypes[every]).reshape(-1, prototypes.shape[-1])
    projected, explained = pa.pca_2d(points)
    m = prototypes.shape[1]
    groups = np.repeat(np.concatenate([np.full(len(ids[d]), i) for i, d in
                                       enumerate(datasets)]), m)
    point_labels = [k for d in datasets for k in names[d] for _ in range(m)]
    files.append(_write_png(out / "prototypes_pca.png", figures.scatter_figure(
        projected, groups, [f"{d} ({types.skeleton(d).name})" for d in datasets],
        f"prototypes, PCA (PC1 {explained[0]:.0%}, PC2 {explained[1]:.0%} of variance)",
        point_labels=point_labels)))
    if image is not None:
        files.append(_assignment_figure(loaded, datasets, every, labels, image, out, device))
    from posebh_cli.io.atomic import atomic_write_json

    summary: dict[str, Any] = {"run": str(loaded.run_dir), "datasets": datasets,
                               "similarity": "max over prototype pairs of |cos|", "pairs": pairs}
    report: dict[str, Any] = {"files": files, "pairs": pairs}
    if expected_pairs is not None:
        from posebh_cli.viz.correspondence_check import score_correspondences

        score = score_correspondences(pairs, expected_pairs, str(expected))
        summary["expected"] = report["expected"] = {"file": str(expected), **score}
    correspondence = out / "correspondence.json"
    atomic_write_json(correspondence, summary)
    files.append(str(correspondence))
    return report


def _assignment_figure(loaded, datasets, every, labels, image_path: Path, out: Path,
                       device) -> str:
    import numpy as np

    from posebh_cli.data.image_cache import read_image
    from posebh_cli.viz import figures
    from posebh_cli.viz import prototype_analysis as pa

    image = read_image(image_path)
    first = loaded.recipe.dataset(datasets[0])
    assignment, similarity = pa.pixel_assignment(
        loaded.model, image, every, loaded.types.dataset_index(datasets[0]),
        input_size=tuple(loaded.recipe.model.input_size), udp=first.encoding == "udp",
        box_padding=loaded.recipe.box_padding(datasets[0]), device=device)
    low, high = np.percentile(similarity, [5, 99])
    strength = (similarity - low) / max(high - low, 1e-6)
    figure = figures.label_overlay(image, assignment, strength,
                                   figures.distinct_colors(len(labels)), labels)
    return _write_png(out / f"assignment_{image_path.stem}.png", figure)


def _print_pairs(pairs: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from posebh_cli.cli.console import console

    for pair in pairs:
        table = Table(title=f"{pair['a']} -> {pair['b']}: best-matching keypoint")
        for column in ("keypoint", "match", "similarity", "margin"):
            table.add_column(column, justify="right" if column in ("similarity", "margin")
                             else "left")
        for match in pair["matches"]:
            table.add_row(match["keypoint"], match["match"], f"{match['similarity']:.3f}",
                          f"{match['margin']:.3f}")
        console.print(table)


def visualize_prototypes_command(
    run: RunDir = None,
    checkpoint: Checkpoint = None,
    skeletons: Annotated[Optional[str], typer.Option(
        "--skeletons", help="Comma-separated datasets, skeletons or families of the run "
                            "(default: all).")] = None,
    image: Annotated[Optional[Path], typer.Option(
        "--image", help="Also overlay the per-pixel prototype assignment on this image.")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output folder (default: <run>/prototypes).")] = None,
    expected: Annotated[Optional[Path], typer.Option(
        "--expected", help="Known correspondences to score the matches against, e.g. "
                           "data/synthetic/correspondence.json of `posebh prepare synthetic`.")
    ] = None,
    device: Device = "auto",
    json_output: JsonOutput = False,
) -> None:
    """Plot the prototype table: cross-skeleton similarity matrices, keypoint correspondences
    (printed and correspondence.json), a PCA projection and, with --image, per-pixel assignment.

    Example: posebh visualize-prototypes --skeletons synth_human,synth_animal --image cat.png
    On the demo run, --expected data/synthetic/correspondence.json also scores the matches
    against the generator's known correspondences.
    """
    from posebh_cli.cli.console import console
    from posebh_cli.cli.train import resolve_device
    from posebh_cli.engine.load_run import load_run
    from posebh_cli.engine.predict_loop import select_datasets

    if image is not None and not image.is_file():
        raise PosebhError(f"--image {image}: file not found")
    expected_pairs = None
    if expected is not None:
        from posebh_cli.viz.correspondence_check import read_expected_pairs

        expected_pairs = read_expected_pairs(expected)  # a bad file fails before the model loads
    torch_device = resolve_device(device)
    loaded = load_run(run, checkpoint, torch_device)
    datasets = (list(loaded.types.datasets) if skeletons is None
                else select_datasets(loaded, skeletons))
    target = Path(out) if out is not None else loaded.run_dir / "prototypes"
    report = visualize_prototypes(loaded, datasets, target, image=image, device=torch_device,
                                  expected=expected, expected_pairs=expected_pairs)
    if json_output:
        console.print_json(json.dumps(report))
        return
    _print_pairs(report["pairs"])
    if "expected" in report:
        score = report["expected"]
        console.print(f"expected correspondences ({expected}): {score['recovered']} of "
                      f"{score['total']} recovered ({score['fraction']:.0%}; a keypoint's best "
                      "match in the other skeleton, both directions)", markup=False)
    console.print("wrote " + ", ".join(report["files"]), markup=False)
