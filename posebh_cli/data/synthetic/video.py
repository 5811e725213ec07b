"""Short demo videos made from synthetic images by a moving camera (pan, zoom, slight roll).

`posebh predict video.mp4` needs a video whose content the demo model knows; a smoothly moving
virtual camera over a rendered scene gives real motion (figures translate, scale and rotate
between frames) without a second renderer.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import cv2

from posebh_cli.errors import PosebhError

FPS = 15


def camera_path(frame: int, frames: int) -> tuple[float, float, float, float]:
    """(dx, dy, zoom, roll_degrees) of the virtual camera at `frame`: one smooth loop."""
    t = 2.0 * math.pi * frame / max(frames, 1)
    return 0.12 * math.sin(t), 0.08 * math.sin(2 * t), 1.0 + 0.25 * (1 - math.cos(t)) / 2, \
        6.0 * math.sin(t)


def write_camera_video(image_path: Path, out_path: Path, *, frames: int = 45,
                       size: tuple[int, int] = (320, 240)) -> Path:
    """Render `frames` views of one image into an mp4 (mp4v) at `out_path`, atomically.

    size: (width, height) of the video.
    """
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise PosebhError(f"{image_path}: cannot read the image for the demo video")
    height, width = image.shape[:2]
    out_w, out_h = size
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".mp4", dir=out_path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (out_w, out_h))
    try:
        if not writer.isOpened():
            raise PosebhError(f"{out_path}: OpenCV cannot write mp4v video here")
        base = max(out_w / width, out_h / height)  # cover the frame: no empty borders
        for frame in range(frames):
            dx, dy, zoom, roll = camera_path(frame, frames)
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), roll, base * zoom)
            # Centre the scaled image in the frame, then pan by a fraction of the frame size.
            matrix[0, 2] += out_w / 2 - width / 2 + dx * out_w
            matrix[1, 2] += out_h / 2 - height / 2 + dy * out_h
            view = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            writer.write(view)
        writer.release()
        os.replace(tmp, out_path)
    except BaseException:
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path


def write_demo_videos(dataset_dir: Path) -> dict[str, str]:
    """One video per family from its first val image: `<dataset_dir>/videos/<family>.mp4`."""
    videos = {}
    for family in ("human", "animal", "hand"):
        folder = dataset_dir / "images" / family / "val"
        images = sorted(folder.glob("*.jpg"))
        if not images:
            continue
        out = write_camera_video(images[0], dataset_dir / "videos" / f"{family}.mp4")
        videos[family] = str(out)
    return videos
