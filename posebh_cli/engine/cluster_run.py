"""`posebh cluster` as a library call: a loaded run in, an updated run directory and a report out.

Steps: (optionally) append a new dataset to the run (engine/extend_run.py); embed the labelled
keypoints of at most N images of the dataset's split; refresh its block of the prototype table
with balanced Sinkhorn k-means; cluster the whole table into C joint concepts; write the new
weights, run.json (with a "clustering" section), the recipe and the JSON report, each atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posebh_cli.engine import run_dir as rd
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import DatasetConfig


@dataclass
class ClusterRequest:
    """What to do. dataset: a run dataset to refresh (None with new_dataset or concepts only).
    concepts: C (None = keypoints of the largest skeleton; 0 = skip)."""

    dataset: str | None
    split: str = "train"
    max_images: int = 300
    concepts: int | None = None
    init: str = "kmeans++"
    iters: int = 10
    seed: int = 0
    batch_size: int | None = None
    device: torch.device = torch.device("cpu")
    new_dataset: DatasetConfig | None = None
    like: str | None = None


def select_images(table, max_images: int, seed: int):
    """Instances with labelled keypoints on at most `max_images` images (seeded choice)."""
    import numpy as np

    rows = table.labelled_rows()
    images = np.unique(table.image_index[rows])
    if len(images) > max_images:
        images = np.sort(np.random.default_rng(seed).choice(images, max_images, replace=False))
    rows = rows[np.isin(table.image_index[rows], images)]
    return table.select(rows), int(len(images))


def refresh_rows(types, dataset: str, refresh) -> list[dict[str, Any]]:
    """Per keypoint of the dataset: samples, cluster sizes, best |cos| before and after."""
    skeleton = types.skeleton(dataset)
    rows = []
    for k, keypoint in enumerate(skeleton.keypoints):
        before, after = float(refresh.similarity_before[k]), float(refresh.similarity_after[k])
        rows.append({"keypoint": keypoint, "type_id": types.offset(dataset) + k,
                     "samples": int(refresh.samples[k]),
                     "cluster_sizes": refresh.cluster_sizes[k].tolist(),
                     "similarity_before": None if before != before else round(before, 4),
                     "similarity_after": None if after != after else round(after, 4)})
    return rows


def refresh_dataset(loaded, request: ClusterRequest, progress: Callable[[int, int], None] | None
                    ) -> dict[str, Any]:
    """Embed, cluster and write the dataset's prototype block into loaded.model; its report."""
    from posebh_cli.engine.build import build_split, load_table
    from posebh_cli.engine.clustering import extract_keypoint_embeddings, refresh_prototypes
    from posebh_cli.engine.evaluate import eval_autocast

    recipe, types, model = loaded.recipe, loaded.types, loaded.model
    name = request.new_dataset.name if request.new_dataset else request.dataset
    config = recipe.dataset(name)  # unknown names: one line with close matches
    table, num_images = select_images(load_table(config, request.split), request.max_images,
                                      request.seed)
    if len(table) == 0:
        raise PosebhError(f"dataset '{name}' {request.split} split: no instance with labelled "
                          "keypoints to cluster")
    split = build_split(recipe, types, config, request.split, train=False, table=table)
    offset, count = types.offset(name), types.num_keypoints(name)
    embedded = extract_keypoint_embeddings(
        model, split.dataset, split.index, offset, device=request.device,
        batch_size=request.batch_size or recipe.eval.batch_size,
        autocast_dtype=eval_autocast(recipe.train.precision, request.device), progress=progress)
    if embedded.embeddings.shape[0] == 0:
        raise PosebhError(f"dataset '{name}' {request.split} split: no labelled keypoint "
                          "inside the crops")
    table_now = model.prototype_table.prototypes.detach().float().cpu()  # (J, M, F)
    refresh = refresh_prototypes(
        embedded.embeddings, embedded.keypoint_ids, table_now[offset:offset + count],
        iters=request.iters, init=request.init, eps=recipe.prototypes.eps,
        sinkhorn_iters=recipe.prototypes.iters, seed=request.seed, backend="torch")
    with torch.no_grad():  # a slice write: every other row stays bit-identical
        buffer = model.prototype_table.prototypes
        buffer[offset:offset + count].copy_(refresh.prototypes.to(buffer))  # unit rows already
    keypoints = types.skeleton(name).keypoints
    return {
        "dataset": name, "skeleton": types.skeleton(name).name, "split": request.split,
        "new_dataset": request.new_dataset is not None, "like": request.like,
        "images": num_images, "instances": len(table),
        "embeddings": int(embedded.embeddings.shape[0]), "init": request.init,
        "iterations": refresh.iterations, "type_offset": offset,
        "types_without_samples": [keypoints[k] for k in refresh.empty_types],
        "keypoints": refresh_rows(types, name, refresh),
    }


def check_concept_count(loaded, request: ClusterRequest) -> None:
    from posebh_cli.skeletons import get_skeleton

    num_types = loaded.types.num_types
    if request.new_dataset is not None:
        num_types += get_skeleton(request.new_dataset.skeleton).num_keypoints
    if request.concepts is not None and not 0 <= request.concepts <= num_types:
        raise PosebhError(f"--concepts {request.concepts}: expected 1 to {num_types} (the number "
                          "of keypoint types in the prototype table; 0 skips the concepts)")


def default_concepts(types) -> int:
    return min(max(s.num_keypoints for s in types.skeletons), types.num_types)


def concept_report(loaded, request: ClusterRequest) -> dict[str, Any] | None:
    from posebh_cli.engine.clustering import cluster_concepts

    types = loaded.types
    count = default_concepts(types) if request.concepts is None else request.concepts
    if count == 0:
        return None
    labels = [(d, s.name, k) for d, s in zip(types.datasets, types.skeletons)
              for k in s.keypoints]
    recipe = loaded.recipe
    result = cluster_concepts(loaded.model.prototype_table.prototypes.detach().cpu(), count,
                              labels, eps=recipe.prototypes.eps,
                              sinkhorn_iters=recipe.prototypes.iters, seed=request.seed,
                              backend="torch")
    return result.report


def updated_run_info(loaded, section: dict[str, Any]) -> dict[str, Any]:
    """The source run.json with the (possibly extended) dataset table and the clustering."""
    info = {k: v for k, v in loaded.info.items() if k != "format"}
    trained = {d.get("name"): d for d in info.get("datasets", []) if isinstance(d, dict)}
    datasets = []
    for config, skeleton in zip(loaded.recipe.datasets, loaded.types.skeletons):
        entry = dict(trained.get(config.name) or {
            "name": config.name, "skeleton": skeleton.name, "encoding": config.encoding,
            "num_keypoints": skeleton.num_keypoints, "head": f"heads.{config.name}",
            "head_trained": False})
        datasets.append(entry)
    info.update(datasets=datasets, keypoint_types=loaded.types.to_dict(),
                prototypes={"shape": list(loaded.model.prototype_table.prototypes.shape),
                            "tensor": "prototype_table.prototypes"},
                clustering=section)
    return info


def cluster_run(loaded, request: ClusterRequest, *, target: Path | None, report_file: Path,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the request on `loaded` (a LoadedRun; its model/recipe/types are updated in place).

    target: where the new model.safetensors goes (its folder becomes a run directory), or None
    when only the concept report is asked for. Returns the report (also written to
    report_file).
    """
    from posebh_cli import __version__
    from posebh_cli.engine.provenance import git_sha
    from posebh_cli.io.atomic import atomic_write_json, atomic_write_text, json_ready
    from posebh_cli.io.checkpoint import save_run_info, save_weights

    report: dict[str, Any] = {"run": str(Path(loaded.run_dir).resolve()),
                              "source": str(Path(loaded.weights).resolve()),
                              "output": str(target.resolve()) if target else None,
                              "report": str(report_file.resolve())}
    check_concept_count(loaded, request)  # before the slow part
    if request.new_dataset is not None:
        from posebh_cli.engine.extend_run import add_dataset

        extended = add_dataset(loaded.model, loaded.recipe, request.new_dataset, request.like)
        loaded.model, loaded.recipe, loaded.types = extended.model, extended.recipe, \
            extended.types
        request.like = extended.like
    if request.dataset is not None or request.new_dataset is not None:
        report["refresh"] = refresh_dataset(loaded, request, progress)
    report["concepts"] = concept_report(loaded, request)
    report = json_ready(report)
    if target is not None:
        refresh = report.get("refresh") or {}
        section = {key: refresh.get(key) for key in (
            "dataset", "skeleton", "split", "new_dataset", "like", "images", "instances",
            "embeddings", "init", "iterations", "types_without_samples")}
        section.update(source=report["source"], report=report["report"],
                       concepts=(report["concepts"] or {}).get("num_concepts"),
                       version=__version__, git_sha=git_sha())
        target.parent.mkdir(parents=True, exist_ok=True)
        # Recipe and run.json first, weights last: a folder without weights is not a run yet.
        atomic_write_text(target.parent / rd.RECIPE_FILE, loaded.recipe.to_toml())
        save_run_info(target.parent / rd.RUN_INFO_FILE, updated_run_info(loaded, section))
        save_weights(target, loaded.model)
    report_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(report_file, report)
    return report
