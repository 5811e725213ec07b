from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posebh_cli.data.image_cache import ImageCache, read_image, to_warp_layout
from posebh_cli.errors import PosebhError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _write(tmp_path: Path, name: str, h: int, w: int, value: int) -> Path:
    path = tmp_path / name
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


def test_read_image_bgr_and_errors(tmp_path):
    path = tmp_path / "a.png"
    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    cv2.imwrite(str(path), image)
    out = read_image(path)
    assert out.shape == (4, 5, 3) and out[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(PosebhError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(PosebhError, match="bad.jpg"):
        read_image(bad)


def test_cache_holds_bgra_warp_layout(tmp_path):
    path = tmp_path / "c.png"
    cv2.imwrite(str(path), np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
    image = ImageCache().get(path)
    assert image.shape == (1, 2, 4) and image.tolist() == [[[1, 2, 3, 255], [4, 5, 6, 255]]]
    assert to_warp_layout(image) is image


def test_palette_png_becomes_three_channels():
    folder = SHARED_DATA / "horse10"
    pngs = sorted(folder.rglob("*.png")) if folder.exists() else []
    if not pngs:
        pytest.skip("shared horse10 sample data not available")
    image = read_image(pngs[0])
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.std() > 0


def test_lru_eviction_under_byte_budget(tmp_path):
    paths = [_write(tmp_path, f"{i}.png", 10, 10, i * 20) for i in range(4)]
    cache = ImageCache(max_bytes=3 * 400)  # three 10x10 BGRA images
    for p in paths[:3]:
        cache.get(p)
    assert len(cache) == 3 and cache.bytes_used == 1200 and cache.misses == 3
    assert cache.get(paths[0])[0, 0, 0] == 0 and cache.hits == 1  # 0 is now most recent
    cache.get(paths[3])  # evicts 1, the least recently used
    assert paths[1] not in cache and paths[0] in cache and paths[3] in cache
    assert cache.bytes_used == 1200
    with pytest.raises(ValueError):
        cache.get(paths[0])[0, 0, 0] = 5  # cached arrays are read-only


def test_oversized_image_is_returned_not_kept_and_predecode(tmp_path):
    big = _write(tmp_path, "big.png", 100, 100, 7)
    cache = ImageCache(max_bytes=1000)
    assert cache.get(big).shape == (100, 100, 4) and len(cache) == 0
    small = [_write(tmp_path, f"s{i}.png", 5, 5, i) for i in range(3)]
    cache = ImageCache(max_bytes=10_000)
    assert cache.predecode(small + small) == 3 and cache.misses == 3
    cache.get(small[1])
    assert cache.hits == 1
    cache.clear()
    assert len(cache) == 0 and cache.bytes_used == 0
