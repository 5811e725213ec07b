"""Image decoding with a decoded-image LRU cache under a byte budget.

Top-down training crops many instances out of the same image, and small datasets (the CPU demo,
the test samples) are cropped thousands of times: decoding a JPEG costs several times more than
the crop itself, so decoded images are kept, least recently used evicted first. Each DataLoader
worker owns its cache; `predecode` fills one before workers fork so they share the pages.

Cached images are kept in the WARP LAYOUT, (H, W, 4) uint8 BGRA (alpha = 255): OpenCV's bilinear
`warpAffine` has a SIMD path for 4-channel uint8 images that 3-channel ones lack, measured 2-3x
faster on a 256x192 crop (benchmarks/pipeline.py), which outweighs the one-time conversion and the
extra 33% of memory. The transform drops the padding channel and swaps BGR to RGB on the small crop
(see posebh_cli.data.transforms).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable

import cv2
import numpy as np

from posebh_cli.errors import PosebhError


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file as (H, W, 3) uint8 BGR (grey and palette images become 3-channel).

    Raises PosebhError naming the file when it is missing or cannot be decoded.
    """
    path = os.fspath(path)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        if not os.path.exists(path):
            raise PosebhError(f"image file not found: {path}")
        raise PosebhError(f"cannot decode image file {path} (not an image OpenCV can read)")
    return image


def to_warp_layout(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR -> (H, W, 4) BGRA, the layout warpAffine crops fastest (see module doc)."""
    if image.ndim == 3 and image.shape[2] == 4:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)


def read_image_for_warp(path: str | os.PathLike[str]) -> np.ndarray:
    """`read_image` in the warp layout: (H, W, 4) uint8 BGRA."""
    return to_warp_layout(read_image(path))


class ImageCache:
    """LRU cache of decoded (H, W, 4) BGRA images keyed by path, bounded by `max_bytes` of pixels.

    An image larger than the whole budget is decoded and returned but not kept. Cached arrays are
    marked read-only so a caller cannot corrupt later reads.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes_used = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path) in self._images

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        """The decoded (H, W, 4) uint8 BGRA image at `path` (read-only array)."""
        key = os.fspath(path)
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
            self.hits += 1
            return image
        self.misses += 1
        image = read_image_for_warp(key)
        image.setflags(write=False)
        self._insert(key, image)
        return image

    def _insert(self, key: str, image: np.ndarray) -> None:
        size = image.nbytes
        if size > self.max_bytes:
            return
        while self._images and self.bytes_used + size > self.max_bytes:
            _, evicted = self._images.popitem(last=False)
            self.bytes_used -= evicted.nbytes
        self._images[key] = image
        self.bytes_used += size

    def predecode(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Decode every distinct path now (e.g. a whole small dataset before workers fork).

        Returns the number of images held afterwards; stops adding once the budget is full.
        """
        for path in dict.fromkeys(os.fspath(p) for p in paths):
            if self.bytes_used >= self.max_bytes:
                break
            self.get(path)
        return len(self._images)

    def clear(self) -> None:
        self._images.clear()
        self.bytes_used = 0
