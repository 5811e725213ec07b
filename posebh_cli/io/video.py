"""Video and image sources for `posebh predict`, and an atomic mp4 writer (OpenCV).

SOURCE is an image file, a folder or glob of images, a video file, or a webcam index (an
integer). OpenCV reads H.264 mp4 here; it writes `mp4v` mp4 (ENV.md: `avc1` does not open).
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posebh_cli.errors import PosebhError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")


@dataclass(frozen=True)
class Source:
    """kind: "images" (paths), "video" (path) or "webcam" (index)."""

    kind: str
    paths: tuple[Path, ...] = field(default_factory=tuple)
    webcam: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "webcam":
            return f"webcam{self.webcam}"
        return self.paths[0].stem


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def resolve_source(source: str) -> Source:
    """Classify SOURCE; PosebhError when it names nothing usable."""
    if source.strip().isdigit():
        return Source("webcam", webcam=int(source))
    path = Path(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and _is_image(p))
        if not images:
            raise PosebhError(f"SOURCE {source}: folder holds no image "
                              f"({', '.join(IMAGE_EXTENSIONS)})")
        return Source("images", tuple(images))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_EXTENSIONS:
            return Source("video", (path,))
        if suffix in IMAGE_EXTENSIONS:
            return Source("images", (path,))
        raise PosebhError(f"SOURCE {source}: unknown file type '{suffix}'; expected an image "
                          f"({', '.join(IMAGE_EXTENSIONS)}) or a video "
                          f"({', '.join(VIDEO_EXTENSIONS)})")
    if glob.has_magic(source):
        images = sorted(Path(p) for p in glob.glob(source) if _is_image(Path(p)))
        if not images:
            raise PosebhError(f"SOURCE {source}: the pattern matches no image")
        return Source("images", tuple(images))
    raise PosebhError(f"SOURCE {source}: no such file or folder (give an image, a folder or "
                      "glob of images, a video file or a webcam index)")


class VideoReader:
    """Frames of a video file or webcam as (H, W, 3) uint8 BGR; PosebhError if unreadable/empty."""

    def __init__(self, source: str | int | os.PathLike[str]) -> None:
        self.label = f"webcam {source}" if isinstance(source, int) else str(source)
        target = source if isinstance(source, int) else os.fspath(source)
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            raise PosebhError(f"{self.label}: cannot open the video (unreadable file or "
                              "unsupported codec)")
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise PosebhError(f"{self.label}: the video has no readable frame (empty or "
                              "corrupt)")
        self._first: np.ndarray | None = first
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None  # webcams have none
        self.size = (first.shape[1], first.shape[0])  # (W, H)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield frame

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AtomicVideoWriter:
    """mp4 (`mp4v`) writer: frames go to a hidden temporary file in the target folder, renamed
    onto `path` only when the writer closes without an exception."""

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}"
        self.size = (int(size[0]), int(size[1]))
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"),
                                      float(fps), self.size)
        if not self.writer.isOpened():
            raise PosebhError(f"{self.path}: OpenCV cannot write an mp4v video here")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame size {(frame.shape[1], frame.shape[0])} != {self.size}")
        self.writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def __enter__(self) -> AtomicVideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.release()
        if exc_type is None and self.frames > 0:
            os.replace(self.tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()


def display_available() -> bool:
    """Whether cv2.imshow can open a window (a display, and an OpenCV built with a GUI)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False
    info = cv2.getBuildInformation()
    gui = [line for line in info.splitlines() if line.strip().startswith("GUI:")]
    return bool(gui) and "NONE" not in gui[0].upper()
