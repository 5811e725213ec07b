"""The prepared index: exact round trip, version and corruption checks, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posebh_cli.data.prepared_index import INDEX_VERSION, load_index, read_index_meta, save_index
from posebh_cli.data.records import InstanceTable
from posebh_cli.errors import PosebhError


def _table(n: int = 5, k: int = 3) -> InstanceTable:
    rng = np.random.default_rng(0)
    return InstanceTable(
        dataset="toy", skeleton="coco", image_root="/data/ü",
        image_files=np.asarray(["a/1.jpg", "b/long_name_2.jpg"]),
        image_ids=np.asarray([10, 20], dtype=np.int64),
        image_sizes=np.asarray([[480, 640], [0, 0]], dtype=np.int32),
        image_index=rng.integers(0, 2, n), boxes=rng.random((n, 4), dtype=np.float32),
        keypoints=rng.random((n, k, 3), dtype=np.float32),
        areas=rng.random(n, dtype=np.float32), instance_ids=np.arange(n),
        category_ids=np.ones(n, dtype=np.int64), scores=np.ones(n, dtype=np.float32),
        extras={"iscrowd": np.zeros(n, dtype=bool), "hand_types": np.asarray(["left"] * n)},
        meta={"ann_file": "/x.json", "categories": {"1": "person"}})


def test_round_trip_is_exact(tmp_path):
    table = _table()
    save_index(tmp_path / "i.npz", table)
    loaded = load_index(tmp_path / "i.npz")
    assert (loaded.dataset, loaded.skeleton, loaded.image_root) == ("toy", "coco", "/data/ü")
    for name in ("image_files", "image_ids", "image_sizes", "image_index", "boxes",
                 "keypoints", "areas", "instance_ids", "category_ids", "scores"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(table, name))
        assert getattr(loaded, name).dtype == getattr(table, name).dtype
    assert set(loaded.extras) == {"iscrowd", "hand_types"}
    assert loaded.extras["hand_types"].tolist() == ["left"] * 5
    assert loaded.meta == table.meta
    assert read_index_meta(tmp_path / "i.npz")["meta"]["ann_file"] == "/x.json"
    assert [p.name for p in tmp_path.iterdir()] == ["i.npz"]  # no temp file left


def test_empty_table_round_trips(tmp_path):
    table = _table(n=0)
    save_index(tmp_path / "e.npz", table)
    assert len(load_index(tmp_path / "e.npz")) == 0


def test_missing_corrupt_and_old_version(tmp_path):
    with pytest.raises(PosebhError, match="prepared index not found"):
        load_index(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(PosebhError, match=r"bad\.npz: corrupt prepared index"):
        load_index(tmp_path / "bad.npz")
    path = tmp_path / "old.npz"
    save_index(path, _table())
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["header"]))
    header["version"] = INDEX_VERSION + 1
    arrays["header"] = np.asarray(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(PosebhError, match=f"old.npz: prepared index version {INDEX_VERSION + 1}"):
        load_index(path)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "t.npz"
    save_index(path, _table(n=50))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PosebhError, match="corrupt prepared index"):
        load_index(path)


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "i.npz"
    save_index(path, _table())
    before = path.read_bytes()
    bad = _table()
    bad.extras["objects"] = np.asarray([object()] * 5, dtype=object)
    with pytest.raises(ValueError, match="dtype object"):
        save_index(path, bad)
    assert path.read_bytes() == before


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "i.npz"
    save_index(path, _table())
    before = path.read_bytes()

    def savez_then_die(handle, **arrays):
        handle.write(b"PK half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_index(path, _table(n=9))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["i.npz"]
