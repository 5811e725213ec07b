"""Image checks every reader runs: existence for every image (fast), decoding on request."""

from __future__ import annotations

import os
import stat

from posebh_cli.data.readers.common import Progress


def image_problem(path: str, *, decode: bool) -> tuple[str | None, tuple[int, int]]:
    """(None, (height, width)) for a usable image, else (reason, (0, 0)).

    Without `decode` only existence is checked (one os.stat) and the size stays (0, 0). With it
    the image is decoded by OpenCV (palette PNGs come out as 3-channel colour), which catches
    truncated or corrupt files.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"image file not found: {path}", (0, 0)
    except OSError as error:
        return f"cannot read image file {path} ({error.__class__.__name__})", (0, 0)
    if not stat.S_ISREG(info.st_mode):
        return f"image path is not a file: {path}", (0, 0)
    if not decode:
        return None, (0, 0)
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return f"image file is corrupt or not an image: {path}", (0, 0)
    return None, (int(image.shape[0]), int(image.shape[1]))


def check_images(paths: list[str], *, decode: bool,
                 progress: Progress | None = None) -> list[tuple[str | None, tuple[int, int]]]:
    """`image_problem` for each path, reporting progress every 256 images."""
    results = []
    for i, path in enumerate(paths):
        results.append(image_problem(path, decode=decode))
        if progress is not None and (i % 256 == 255 or i == len(paths) - 1):
            progress(i + 1, len(paths))
    return results
