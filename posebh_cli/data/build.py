"""`load_split`: one recipe dataset split as an `InstanceTable`, through a cached prepared index.

The cache sits at `<cache_dir>/<name>_<split>.npz` (default `<root>/.posebh/`, where
`posebh prepare` writes too) and is reused while the annotation file's size and mtime, the
image folder, the skeleton and the format match what the index recorded; otherwise the split
is prepared again and the cache rewritten. Evaluation splits with `boxes` = a detection file
get detected boxes over the ground truth's images.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from posebh_cli.data.prepared_index import load_index, read_index_meta, save_index
from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError
from posebh_cli.recipe import DatasetConfig


def index_is_fresh(header: dict[str, Any], ann_path: Path, image_root: Path, skeleton: str,
                   format_name: str, split: str) -> bool:
    meta = header.get("meta", {})
    source = Path(meta.get("raw_ann_file") or meta.get("ann_file", ""))
    try:
        info = ann_path.stat()
    except OSError:
        return False
    if format_name == "apt36k_raw":
        # The index was read from a split file; the raw file's stamp decides freshness.
        stamp_ok = source == ann_path.resolve() and meta.get("raw_size") == info.st_size \
            and meta.get("raw_mtime_ns") == info.st_mtime_ns
    else:
        stamp_ok = source == ann_path.resolve() and meta.get("ann_size") == info.st_size \
            and meta.get("ann_mtime_ns") == info.st_mtime_ns
    return (stamp_ok and header.get("skeleton") == skeleton
            and header.get("image_root") == str(image_root)
            and meta.get("split") == split
            and meta.get("format") in (format_name, "apt36k"))


def load_split(dataset_cfg: DatasetConfig, split: str, *,
               cache_dir: str | os.PathLike[str] | None = None,
               skip_invalid: bool = False) -> InstanceTable:
    """The `split` ("train", "val" or "test") of a recipe dataset, prepared or from cache."""
    from posebh_cli.data.prepare import index_path, read_split
    from posebh_cli.data.readers.detections import read_detections

    split_cfg = dataset_cfg.split(split)
    root = Path(dataset_cfg.root)
    ann_path = root / split_cfg.ann
    image_root = root / split_cfg.images
    format_name = dataset_cfg.reader
    cache_dir = Path(cache_dir) if cache_dir is not None else root / ".posebh"
    cache = index_path(cache_dir, dataset_cfg.name, split)
    table = None
    if cache.is_file():
        try:
            if index_is_fresh(read_index_meta(cache), ann_path, image_root,
                              dataset_cfg.skeleton, format_name, split):
                table = load_index(cache)
        except PosebhError:
            table = None  # a corrupt or old cache is rebuilt, not fatal
    if table is None:
        if not ann_path.is_file():
            raise PosebhError(f"datasets.{dataset_cfg.name}.{split}.ann: annotation file "
                              f"{ann_path} not found")
        if format_name == "apt36k_raw":
            table = _apt36k_raw_split(dataset_cfg, split, ann_path, image_root, cache_dir,
                                      skip_invalid)
        else:
            table, _ = read_split(format_name, ann_path, image_root,
                                  dataset_name=dataset_cfg.name, split=split,
                                  skeleton=dataset_cfg.skeleton, skip_invalid=skip_invalid)
        _try_save(cache, table)
    if split_cfg.boxes != "gt":
        table = read_detections(root / split_cfg.boxes, table, split_cfg.det_score_threshold)
    return table


def _apt36k_raw_split(dataset_cfg: DatasetConfig, split: str, raw_path: Path, image_root: Path,
                      cache_dir: Path, skip_invalid: bool) -> InstanceTable:
    """Split the raw APT-36K file by video (seed 0, the documented default) and read `split`."""
    from posebh_cli.data.prepare import read_split
    from posebh_cli.data.readers.common import load_json
    from posebh_cli.data.splits import split_apt36k, split_file_name

    outputs = split_apt36k(load_json(raw_path), raw_path, seed=0)
    table, _ = read_split("apt36k", cache_dir / split_file_name(split), image_root,
                          dataset_name=dataset_cfg.name, split=split,
                          skeleton=dataset_cfg.skeleton, skip_invalid=skip_invalid,
                          data=outputs[split])
    info = raw_path.stat()
    table.meta.update(raw_ann_file=str(raw_path.resolve()), raw_size=info.st_size,
                      raw_mtime_ns=info.st_mtime_ns, split_seed=0,
                      ann_file=str(raw_path.resolve()))
    return table


def _try_save(path: Path, table: InstanceTable) -> None:
    # A read-only dataset folder only costs the cache, not the run.
    with contextlib.suppress(OSError):
        save_index(path, table)
