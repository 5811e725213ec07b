"""`generate_synthetic`: write the whole synthetic multi-skeleton dataset under one folder.

Layout under `out_dir`:
    images/{human,animal,hand}/{train,val}/000000.jpg
    annotations/{human,animal,hand}_{train,val}.json    COCO keypoints (see coco_json.py)
    correspondence.json                                 the generator's concept ground truth
    manifest.json                                       seed, counts, version, sizes

Every image has its own seed (seed, family, split, index), so the result is byte-identical for
one seed whatever the worker count. Everything is written into a hidden sibling folder that is
renamed onto `out_dir` at the end: a killed run never leaves a half dataset behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posebh_cli.data.synthetic.coco_json import annotation_record, coco_document
from posebh_cli.data.synthetic.concepts import (
    FAMILY_SKELETON,
    check_skeleton_orders,
    correspondence_table,
)
from posebh_cli.data.synthetic.render import IMAGE_SIZES, render_image
from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_write_json

GENERATOR_VERSION = "1.2"
DEFAULT_IMAGES_PER_FAMILY = 1500
VAL_FRACTION = 0.1
FAMILIES = ("human", "animal", "hand")
SPLITS = ("train", "val")
JPEG_QUALITY = 90
_CHUNK = 32  # images per worker task: large enough to amortise the pickling


def split_sizes(images_per_family: int) -> dict[str, int]:
    return {"train": images_per_family,
            "val": max(1, int(round(VAL_FRACTION * images_per_family)))}


def _render_chunk(root: str, family: str, split: str, seed: int,
                  indices: list[int]) -> list[tuple[dict[str, Any], list]]:
    """Render and write images `indices`; returns (image record, instances) per image."""
    cv2.setNumThreads(1)  # the process pool is the parallelism
    out = []
    folder = Path(root) / "images" / family / split
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        rng = np.random.default_rng([seed, FAMILIES.index(family), SPLITS.index(split), index])
        image, instances = render_image(family, rng)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {family}/{split}/{index}")
        name = f"{index:06d}.jpg"
        # A plain write: the staging folder is renamed into place only when complete, which
        # makes the dataset atomic as a whole; a per-image fsync would cost ~10 ms x 5000.
        (folder / name).write_bytes(jpeg.tobytes())
        record = {"id": index + 1, "file_name": name, "height": int(image.shape[0]),
                  "width": int(image.shape[1]), "license": 1}
        out.append((record, instances))
    return out


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PosebhError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise PosebhError(f"--out {out_dir}: folder exists and is not empty; "
                          "pass --overwrite to replace it")


def generate_synthetic(
    out_dir: Path,
    *,
    images_per_family: int = DEFAULT_IMAGES_PER_FAMILY,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Generate the dataset; returns {"out_dir", "seed", "counts": {family: {split: {images,
    instances}}}, "seconds"}.

    images_per_family: train images per family (val gets 10%, at least 1).
    workers: processes (default: up to 2, one when the run is tiny).
    progress: called as progress(images_done, images_total) in this process.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if isinstance(images_per_family, bool) or not isinstance(images_per_family, int) \
            or images_per_family < 1:
        raise PosebhError(f"--images {images_per_family!r}: expected an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PosebhError(f"--seed {seed!r}: expected an integer >= 0")
    _check_out_dir(out_dir, overwrite)
    check_skeleton_orders()
    from posebh_cli.skeletons import get_skeleton

    sizes = split_sizes(images_per_family)
    total = len(FAMILIES) * sum(sizes.values())
    if workers is None:
        workers = 1 if total <= 4 * _CHUNK else min(2, os.cpu_count() or 1)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tasks = [(family, split, list(range(i, min(i + _CHUNK, sizes[split]))))
                 for family in FAMILIES for split in SPLITS
                 for i in range(0, sizes[split], _CHUNK)]
        results = _run_tasks(tasks, str(staging), seed, workers, total, progress)
        counts = _write_annotations(staging, results, seed, get_skeleton)
        atomic_write_json(staging / "correspondence.json", correspondence_table())
        atomic_write_json(staging / "manifest.json", {
            "generator": "posebh synthetic", "version": GENERATOR_VERSION, "seed": seed,
            "images_per_family": images_per_family, "val_fraction": VAL_FRACTION,
            "families": {f: FAMILY_SKELETON[f] for f in FAMILIES},
            "image_sizes_hw": [list(s) for s in IMAGE_SIZES], "jpeg_quality": JPEG_QUALITY,
            "counts": counts,
            "layout": {"images": "images/<family>/<split>/<file_name>",
                       "annotations": "annotations/<family>_<split>.json"},
            "license": "CC0-1.0",
        })
        _swap_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"out_dir": str(out_dir), "seed": seed, "counts": counts,
            "seconds": round(time.perf_counter() - start, 2)}


def _run_tasks(tasks, root: str, seed: int, workers: int, total: int, progress):
    results: dict[tuple[str, str], list] = {(f, s): [] for f in FAMILIES for s in SPLITS}
    done = 0
    if workers <= 1:
        outputs = (_render_chunk(root, f, s, seed, idx) for f, s, idx in tasks)
        for (family, split, _), chunk in zip(tasks, outputs, strict=True):
            results[family, split] += chunk
            done += len(chunk)
            if progress:
                progress(done, total)
        return results
    # spawn, not fork: the parent may hold OpenCV / torch threads that fork would copy broken.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_render_chunk, root, f, s, seed, idx) for f, s, idx in tasks]
        for (family, split, _), future in zip(tasks, futures, strict=True):
            chunk = future.result()  # in submission order: deterministic output
            results[family, split] += chunk
            done += len(chunk)
            if progress:
                progress(done, total)
    return results


def _write_annotations(root: Path, results, seed: int, get_skeleton) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for family in FAMILIES:
        skeleton = get_skeleton(FAMILY_SKELETON[family])
        counts[family] = {}
        for split in SPLITS:
            images, annotations = [], []
            for record, instances in results[family, split]:
                images.append(record)
                for instance in instances:
                    annotations.append(annotation_record(instance, len(annotations) + 1,
                                                         record["id"]))
            document = coco_document(family, split, skeleton, images, annotations, seed,
                                     GENERATOR_VERSION)
            atomic_write_json(root / "annotations" / f"{family}_{split}.json", document,
                              indent=None)
            labelled = np.array([a["keypoints"][2::3] for a in annotations]).reshape(-1)
            counts[family][split] = {
                "images": len(images), "instances": len(annotations),
                "keypoints_visible": int((labelled == 2).sum()),
                "keypoints_occluded": int((labelled == 1).sum()),
                "keypoints_outside": int((labelled == 0).sum()),
            }
    return counts


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder onto `out_dir` (replacing an old one last)."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    trash = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(out_dir, trash)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(trash, out_dir)
        raise
    shutil.rmtree(trash, ignore_errors=True)
