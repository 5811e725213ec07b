"""`prepare`: read a dataset's annotation files, validate them, write one prepared index per split.

Every split is read and validated before any index is written, so a bad split leaves the
earlier indexes untouched; each index is written atomically. The index meta records the
annotation file with its size and mtime, which `build.load_split` uses to reuse the index.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.data.prepared_index import save_index
from posebh_cli.data.readers import ReadReport, default_skeleton, get_reader
from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError
from posebh_cli.skeletons import get_skeleton

StageProgress = Callable[[str, int, int], None]
"""progress(description, done, total)."""

# Where each format's files sit under its root by default (the layouts of the public
# releases as mmpose and PoseBH expect them): {split: (annotation file, image folder)}.
DEFAULT_LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "coco": {"train": ("annotations/person_keypoints_train2017.json", "train2017"),
             "val": ("annotations/person_keypoints_val2017.json", "val2017")},
    "aic": {"train": ("annotations/aic_train.json",
                      "ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902"),
            "val": ("annotations/aic_val.json",
                    "ai_challenger_keypoint_validation_20170911/"
                    "keypoint_validation_images_20170911")},
    "mpii": {"train": ("annotations/mpii_train.json", "images"),
             "val": ("annotations/mpii_val.json", "images")},
    "ap10k": {split: (f"annotations/ap10k-{split}-split1.json", "data")
              for split in ("train", "val", "test")},
    "apt36k": {split: (f"annotations/apt36k_{split}.json", "images")
               for split in ("train", "val", "test")},
    "apt36k_raw": {split: ("annotations/apt36k_annotations.json", "images")
                   for split in ("train", "val", "test")},
    "coco_wholebody": {"train": ("annotations/coco_wholebody_train_v1.0.json", "train2017"),
                       "val": ("annotations/coco_wholebody_val_v1.0.json", "val2017")},
    "interhand": {split: (f"annotations/{split}/InterHand2.6M_{split}_data.json",
                          f"images/{split}") for split in ("train", "val", "test")},
    "onehand10k": {split: (f"annotations/onehand10k_{split}.json", "")
                   for split in ("train", "test")},
    "ochuman": {split: (f"annotations/ochuman_coco_format_{split}_range_0.00_1.00.json",
                        "images") for split in ("val", "test")},
}
# `synthetic` has no single layout (one file per family); it is read with --ann, or prepared
# by `prepare_synthetic` right after generation.


@dataclass
class SplitSummary:
    """What one prepared split holds (the rich table and `--json` print this)."""

    dataset: str
    split: str
    format: str
    skeleton: str
    ann_file: str
    index_file: str
    images: int
    instances: int
    trainable_instances: int
    invalid_images: int
    invalid_instances: int
    problems: list[str]
    labelled_per_joint: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_split(format_name: str, ann_path: str | os.PathLike[str],
               image_root: str | os.PathLike[str], *, dataset_name: str, split: str,
               skeleton: str, skip_invalid: bool = False, check_images: bool = False,
               progress: StageProgress | None = None,
               data: Any = None) -> tuple[InstanceTable, ReadReport]:
    """One split through its reader, with the cache keys (file size, mtime) added to meta."""
    ann_path = Path(ann_path)
    reader = get_reader(format_name)
    step = None if progress is None else (
        lambda done, total: progress(f"{dataset_name} {split}: images", done, total))
    kwargs = {"data": data} if data is not None else {}
    table, report = reader(ann_path, image_root, skeleton, dataset_name=dataset_name,
                           skip_invalid=skip_invalid, check_images=check_images,
                           progress=step, **kwargs)
    table.meta.update(split=split, format=format_name, skip_invalid=skip_invalid)
    if data is None:
        record_file_stamp(table, ann_path)
    return table, report


def record_file_stamp(table: InstanceTable, ann_path: Path) -> None:
    """Annotation file size and mtime into meta: the keys that invalidate a cached index."""
    info = ann_path.stat()
    table.meta.update(ann_file=str(ann_path.resolve()), ann_size=info.st_size,
                      ann_mtime_ns=info.st_mtime_ns)


def summarize(table: InstanceTable, report: ReadReport, *, split: str,
              index_file: str | os.PathLike[str]) -> SplitSummary:
    skeleton = get_skeleton(table.skeleton)
    labelled = table.keypoints[:, :, 2] > 0  # (N, K)
    crowd = table.extras.get("iscrowd", np.zeros(len(table), dtype=bool)).astype(bool)
    counts = labelled.sum(axis=0).tolist() if len(table) else [0] * table.num_keypoints
    return SplitSummary(
        dataset=table.dataset, split=split, format=str(table.meta.get("format", "")),
        skeleton=table.skeleton, ann_file=report.ann_file, index_file=str(index_file),
        images=table.num_images, instances=len(table),
        trainable_instances=int(((labelled.sum(axis=1) > 0) & ~crowd).sum()),
        invalid_images=report.invalid_images, invalid_instances=report.invalid_instances,
        problems=list(report.problems),
        labelled_per_joint=dict(zip(skeleton.keypoints, (int(c) for c in counts), strict=True)))


def index_path(out_dir: str | os.PathLike[str], dataset_name: str, split: str) -> Path:
    return Path(out_dir) / f"{dataset_name}_{split}.npz"


def resolve_files(format_name: str, root: Path, *, ann: str | None, images: str | None,
                  splits: tuple[str, ...]) -> dict[str, tuple[Path, Path]]:
    """{split: (annotation file, image folder)} from --ann/--images or the default layout."""
    layout = DEFAULT_LAYOUTS.get(format_name, {})
    if ann is None and not layout:
        raise PosebhError(f"format '{format_name}' has no default file layout: pass --ann FILE")
    if ann is not None:
        if len(splits) > 1 and format_name != "apt36k_raw":
            raise PosebhError("--ann names one annotation file: give at most one --split "
                              "with it")
        names = splits or (("train", "val", "test") if format_name == "apt36k_raw"
                           else ("train",))
        folder = images if images is not None else (
            next(iter(layout.values()))[1] if layout else "")
        return {name: (root / ann, root / folder) for name in names}
    unknown = [s for s in splits if s not in layout]
    if unknown:
        raise PosebhError(f"--split {unknown[0]}: format '{format_name}' has splits "
                          f"{', '.join(layout)} by default (or pass --ann FILE)")
    chosen = splits or tuple(layout)
    files = {name: (root / layout[name][0], root / (images if images is not None
                                                    else layout[name][1])) for name in chosen}
    present = {name: paths for name, paths in files.items() if paths[0].is_file()}
    if splits and len(present) < len(files):
        missing = next(paths[0] for name, paths in files.items() if name not in present)
        raise PosebhError(f"{missing}: annotation file not found (pass --ann FILE)")
    if not present:
        expected = ", ".join(str(paths[0]) for paths in files.values())
        raise PosebhError(f"{root}: no annotation file of format '{format_name}' found "
                          f"(expected {expected}); pass --ann FILE")
    return present


def prepare_dataset(format_name: str, root: str | os.PathLike[str], *, ann: str | None = None,
                    images: str | None = None, splits: tuple[str, ...] = (),
                    out_dir: str | os.PathLike[str] | None = None, name: str | None = None,
                    skeleton: str | None = None, skip_invalid: bool = False,
                    check_images: bool = False, seed: int = 0,
                    progress: StageProgress | None = None) -> list[SplitSummary]:
    """Validate and index a dataset; indexes go to `out_dir` (default `<root>/.posebh`)."""
    get_reader(format_name)
    root = Path(root)
    if not root.is_dir():
        raise PosebhError(f"--root {root}: not a folder")
    skeleton = skeleton or default_skeleton(format_name)
    get_skeleton(skeleton)
    name = name or ("apt36k" if format_name == "apt36k_raw" else format_name)
    out_dir = Path(out_dir) if out_dir is not None else root / ".posebh"
    files = resolve_files(format_name, root, ann=ann, images=images, splits=splits)
    if format_name == "apt36k_raw":
        read = _read_apt36k_raw(files, out_dir, name=name, skeleton=skeleton,
                                skip_invalid=skip_invalid, check_images=check_images, seed=seed,
                                progress=progress)
    else:
        read = {split: read_split(format_name, ann_path, image_root, dataset_name=name,
                                  split=split, skeleton=skeleton, skip_invalid=skip_invalid,
                                  check_images=check_images, progress=progress)
                for split, (ann_path, image_root) in files.items()}
    summaries = []
    for split, (table, report) in read.items():
        path = index_path(out_dir, name, split)
        save_index(path, table)
        summaries.append(summarize(table, report, split=split, index_file=path))
    return summaries


def _read_apt36k_raw(files: dict[str, tuple[Path, Path]], out_dir: Path, *, name: str,
                     skeleton: str, skip_invalid: bool, check_images: bool, seed: int,
                     progress: StageProgress | None) -> dict[str, tuple[InstanceTable,
                                                                         ReadReport]]:
    """Split the raw file by video, read each split, then write apt36k_{split}.json.

    The split files are written only once every split has been read and validated, so a bad
    raw file leaves earlier outputs untouched.
    """
    from posebh_cli.data.readers.common import load_json
    from posebh_cli.data.splits import split_apt36k, split_file_name
    from posebh_cli.io.atomic import atomic_write_json

    raw_path, image_root = next(iter(files.values()))
    outputs = split_apt36k(load_json(raw_path), raw_path, seed)
    read = {}
    for split in files:
        split_path = out_dir / split_file_name(split)
        table, report = read_split("apt36k", split_path, image_root, dataset_name=name,
                                   split=split, skeleton=skeleton, skip_invalid=skip_invalid,
                                   check_images=check_images, progress=progress,
                                   data=outputs[split])
        info = raw_path.stat()
        table.meta.update(raw_ann_file=str(raw_path.resolve()), raw_size=info.st_size,
                          raw_mtime_ns=info.st_mtime_ns, split_seed=seed)
        read[split] = (table, report)
    for split, (table, _) in read.items():
        split_path = out_dir / split_file_name(split)
        atomic_write_json(split_path, outputs[split], indent=None)
        record_file_stamp(table, split_path)
    return read


def prepare_synthetic(out_dir: str | os.PathLike[str], *, images_per_family: int, seed: int,
                      overwrite: bool = False, progress: StageProgress | None = None,
                      ) -> tuple[dict[str, Any], list[SplitSummary]]:
    """Generate the synthetic dataset, then index every family and split into `<out>/.posebh`.

    Indexes are named `synthetic_<family>_<split>.npz` (family: human, animal, hand).
    """
    from posebh_cli.data.synthetic import generate_synthetic
    from posebh_cli.data.synthetic.concepts import FAMILY_SKELETON

    out_dir = Path(out_dir)
    step = None if progress is None else (
        lambda done, total: progress("synthetic: rendering", done, total))
    result = generate_synthetic(out_dir, images_per_family=images_per_family, seed=seed,
                                overwrite=overwrite, progress=step)
    read = {}
    for family, skeleton in FAMILY_SKELETON.items():
        for split in ("train", "val"):
            ann_path = out_dir / "annotations" / f"{family}_{split}.json"
            read[family, split] = read_split(
                "synthetic", ann_path, out_dir / "images" / family / split,
                dataset_name=f"synthetic_{family}", split=split, skeleton=skeleton,
                progress=progress)
    summaries = []
    for (family, split), (table, report) in read.items():
        path = index_path(out_dir / ".posebh", f"synthetic_{family}", split)
        save_index(path, table)
        summaries.append(summarize(table, report, split=split, index_file=path))
    from posebh_cli.data.synthetic.video import write_demo_videos

    result["videos"] = write_demo_videos(out_dir)
    return result, summaries
