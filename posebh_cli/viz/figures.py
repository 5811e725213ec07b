"""Plain figures drawn with OpenCV and numpy (matplotlib is not a dependency): a labelled
heat-map matrix with a colour bar, a 2-D scatter with a legend, and a label-map overlay.
Every figure is an (H, W, 3) uint8 BGR image on a white background.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (150, 150, 150)


def distinct_colors(count: int, saturation: float = 0.75, value: float = 0.9) -> np.ndarray:
    """(count, 3) uint8 BGR colours with evenly spaced hues (golden-ratio order, so neighbours
    in the list differ strongly)."""
    hues = (np.arange(count) * 0.618033988749895) % 1.0
    rgb = [colorsys.hsv_to_rgb(h, saturation, value) for h in hues]
    return (np.asarray(rgb).reshape(count, 3)[:, ::-1] * 255).round().astype(np.uint8)


def text_size(text: str, scale: float) -> tuple[int, int]:
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    return width, height + baseline


def _vertical_text(text: str, scale: float) -> np.ndarray:
    """The text rotated 90 degrees counter-clockwise, black on white (reads bottom-up)."""
    width, height = text_size(text, scale)
    canvas = np.full((height + 2, width + 2, 3), 255, np.uint8)
    cv2.putText(canvas, text, (1, height - 2), FONT, scale, BLACK, 1, cv2.LINE_AA)
    return cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE)


def matrix_figure(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str,
                  *, vmin: float = 0.0, vmax: float = 1.0, cell: int = 16,
                  row_groups: list[int] | None = None, col_groups: list[int] | None = None,
                  annotate: bool | None = None) -> np.ndarray:
    """Heat map of matrix (R, C) with row labels left, column labels on top (vertical), a colour
    bar (viridis, vmin..vmax) and optional group separators (indices where a block starts).
    annotate: write each value in its cell (default: when cells are large enough)."""
    rows, cols = matrix.shape
    scale = 0.36
    left = max(text_size(t, scale)[0] for t in row_labels) + 8
    top = max(text_size(t, scale)[0] for t in col_labels) + 34
    bar_width, right = 14, 64
    height = top + rows * cell + 12
    width = left + cols * cell + right
    canvas = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(canvas, title, (6, 16), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    normalised = np.clip((matrix - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    colours = cv2.applyColorMap((normalised * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    cells = cv2.resize(colours, (cols * cell, rows * cell), interpolation=cv2.INTER_NEAREST)
    canvas[top:top + rows * cell, left:left + cols * cell] = cells
    annotate = cell >= 26 if annotate is None else annotate
    for r, label in enumerate(row_labels):
        y = top + r * cell + cell // 2 + 4
        cv2.putText(canvas, label, (left - 4 - text_size(label, scale)[0], y), FONT, scale,
                    BLACK, 1, cv2.LINE_AA)
        if annotate:
            for c in range(cols):
                value = f"{matrix[r, c]:.2f}"
                ink = BLACK if normalised[r, c] > 0.6 else WHITE
                cv2.putText(canvas, value, (left + c * cell + 2, y), FONT, 0.3, ink, 1,
                            cv2.LINE_AA)
    for c, label in enumerate(col_labels):
        patch = _vertical_text(label, scale)
        x = left + c * cell + (cell - patch.shape[1]) // 2
        y = top - 4 - patch.shape[0]
        canvas[y:y + patch.shape[0], x:x + patch.shape[1]] = np.minimum(
            canvas[y:y + patch.shape[0], x:x + patch.shape[1]], patch)
    for start in row_groups or []:
        y = top + start * cell
        cv2.line(canvas, (left, y), (left + cols * cell, y), WHITE, 2)
    for start in col_groups or []:
        x = left + start * cell
        cv2.line(canvas, (x, top), (x, top + rows * cell), WHITE, 2)
    # Colour bar: vmax at the top.
    bar_top, bar_height = top, rows * cell
    ramp = np.linspace(255, 0, bar_height).astype(np.uint8)[:, None].repeat(bar_width, axis=1)
    bar_x = left + cols * cell + 10
    canvas[bar_top:bar_top + bar_height, bar_x:bar_x + bar_width] = cv2.applyColorMap(
        ramp, cv2.COLORMAP_VIRIDIS)
    for value, y in ((vmax, bar_top + 8), (vmin, bar_top + bar_height)):
        cv2.putText(canvas, f"{value:.2f}", (bar_x + bar_width + 3, y), FONT, scale, BLACK, 1,
                    cv2.LINE_AA)
    return canvas


def scatter_figure(points: np.ndarray, groups: np.ndarray, group_names: list[str], title: str,
                   *, size: int = 520, point_labels: list[str] | None = None) -> np.ndarray:
    """2-D scatter of points (N, 2) coloured by group id (N,) with a legend; optional small
    labels next to points."""
    colours = distinct_colors(len(group_names))
    margin, legend = 30, max(text_size(n, 0.45)[0] for n in group_names) + 40
    canvas = np.full((size + 2 * margin, size + 2 * margin + legend, 3), 255, np.uint8)
    cv2.putText(canvas, title, (6, 18), FONT, 0.5, BLACK, 1, cv2.LINE_AA)
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-9)
    pixels = margin + (points - low) / span * (size - 1)
    pixels[:, 1] = canvas.shape[0] - pixels[:, 1]  # y up
    cv2.rectangle(canvas, (margin - 4, margin - 4), (margin + size + 4, margin + size + 4),
                  GREY, 1)
    for n, (x, y) in enumerate(pixels):
        colour = tuple(int(v) for v in colours[groups[n]])
        cv2.circle(canvas, (int(x), int(y)), 4, colour, -1, cv2.LINE_AA)
        if point_labels is not None:
            cv2.putText(canvas, point_labels[n], (int(x) + 5, int(y) - 3), FONT, 0.28, colour, 1,
                        cv2.LINE_AA)
    for g, name in enumerate(group_names):
        y = margin + 10 + 20 * g
        x = margin + size + 18
        cv2.circle(canvas, (x, y - 4), 5, tuple(int(v) for v in colours[g]), -1, cv2.LINE_AA)
        cv2.putText(canvas, name, (x + 10, y), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    return canvas


def label_overlay(image: np.ndarray, labels: np.ndarray, strength: np.ndarray,
                  colours: np.ndarray, names: list[str], *, max_legend: int = 14,
                  alpha: float = 0.65) -> np.ndarray:
    """Blend a per-pixel label map onto an image, with a legend of the most frequent labels.

    image (H, W, 3) BGR; labels (H, W) int in [0, len(names)); strength (H, W) in [0, 1] scales
    the blend per pixel; colours (len(names), 3) BGR.
    """
    tint = colours[labels].astype(np.float32)
    weight = (alpha * np.clip(strength, 0, 1))[..., None]
    blended = (image.astype(np.float32) * (1 - weight) + tint * weight).round().astype(np.uint8)
    counts = np.bincount(labels.reshape(-1), minlength=len(names))
    shown = [int(i) for i in np.argsort(-counts)[:max_legend] if counts[i] > 0]
    legend_width = max(text_size(names[i], 0.4)[0] for i in shown) + 30 if shown else 0
    canvas = np.full((max(image.shape[0], 18 * len(shown) + 10), image.shape[1] + legend_width,
                      3), 255, np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = blended
    for row, index in enumerate(shown):
        y = 16 + 18 * row
        x = image.shape[1] + 8
        cv2.rectangle(canvas, (x, y - 10), (x + 12, y + 2), tuple(int(v) for v in colours[index]),
                      -1)
        cv2.putText(canvas, names[index], (x + 16, y), FONT, 0.4, BLACK, 1, cv2.LINE_AA)
    return canvas
