"""The prepared index: one `InstanceTable` as a single `.npz` (no pickle), written atomically.

Layout: every column under its field name, extras under `extra.<name>`, the scalar fields and
`meta` in one JSON string (`header`). Strings are fixed-width unicode arrays, so `np.load` with
`allow_pickle=False` reads everything back; loading 150k instances takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError
from posebh_cli.io.atomic import atomic_open

INDEX_VERSION = 1
ARRAY_FIELDS = ("image_files", "image_ids", "image_sizes", "image_index", "boxes", "keypoints",
                "areas", "instance_ids", "category_ids", "scores")
EXTRA_PREFIX = "extra."


def save_index(path: str | os.PathLike[str], table: InstanceTable) -> None:
    """Write `table` to `path` (.npz) atomically: readers see the old file or the new one."""
    header = {"version": INDEX_VERSION, "dataset": table.dataset, "skeleton": table.skeleton,
              "image_root": table.image_root, "meta": table.meta}
    arrays: dict[str, np.ndarray] = {"header": np.asarray(json.dumps(header))}
    for name in ARRAY_FIELDS:
        arrays[name] = np.ascontiguousarray(getattr(table, name))
    for name, column in table.extras.items():
        if column.dtype == object:
            raise ValueError(f"extra column '{name}' has dtype object; use numbers or str")
        arrays[EXTRA_PREFIX + name] = np.ascontiguousarray(column)
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def load_index(path: str | os.PathLike[str]) -> InstanceTable:
    """Read a prepared index; a missing, corrupt or other-version file is a PosebhError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise PosebhError(f"{path}: prepared index not found (run `posebh prepare`)") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise PosebhError(f"{path}: corrupt prepared index ({error.__class__.__name__}); "
                          "prepare it again") from None
    header = _header(arrays, path)
    missing = [name for name in ARRAY_FIELDS if name not in arrays]
    if missing:
        raise PosebhError(f"{path}: corrupt prepared index (missing {', '.join(missing)}); "
                          "prepare it again")
    extras = {name[len(EXTRA_PREFIX):]: array for name, array in arrays.items()
              if name.startswith(EXTRA_PREFIX)}
    return InstanceTable(dataset=header["dataset"], skeleton=header["skeleton"],
                         image_root=header["image_root"],
                         **{name: arrays[name] for name in ARRAY_FIELDS},
                         extras=extras, meta=header["meta"])


def read_index_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the header (version, dataset, skeleton, image_root, meta): cheap cache checks."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {"header": archive["header"]}
    except FileNotFoundError:
        raise PosebhError(f"{path}: prepared index not found (run `posebh prepare`)") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise PosebhError(f"{path}: corrupt prepared index ({error.__class__.__name__}); "
                          "prepare it again") from None
    return _header(arrays, path)


def _header(arrays: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    if "header" not in arrays:
        raise PosebhError(f"{path}: not a posebh prepared index (no header); prepare it again")
    try:
        header = json.loads(str(arrays["header"]))
    except json.JSONDecodeError:
        raise PosebhError(f"{path}: corrupt prepared index header; prepare it again") from None
    version = header.get("version")
    if version != INDEX_VERSION:
        raise PosebhError(f"{path}: prepared index version {version}, this posebh reads version "
                          f"{INDEX_VERSION}; prepare it again")
    return header
