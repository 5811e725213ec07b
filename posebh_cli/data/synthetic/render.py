"""Render one synthetic image: background, 1-3 posed figures of one family (mostly one),
occluders, noise.

Visibility comes from the pixels, not from guesses: every part is also drawn into an id buffer
(painter's order, far to near), so after the last occluder a keypoint is visible (v=2) exactly
when its own marker is still on top at its pixel, occluded (v=1) when it lies in the image under
something else (its own torso, another figure, an occluder), and unlabelled (v=0) outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posebh_cli.data.synthetic.animal import sample_animal
from posebh_cli.data.synthetic.background import draw_clutter, random_polygon, textured_background
from posebh_cli.data.synthetic.concepts import CONCEPTS, FAMILY_SKELETON, concept_index
from posebh_cli.data.synthetic.figure import Figure, Part, rotation
from posebh_cli.data.synthetic.hand import sample_hand
from posebh_cli.data.synthetic.human import sample_human

IMAGE_SIZES = ((256, 256), (240, 320), (320, 240))  # (height, width)
BUILDERS = {"human": sample_human, "animal": sample_animal, "hand": sample_hand}
SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn at 1/16 pixel
_SCALE = 1 << SHIFT
# A part hides a keypoint of the same figure only when it is this much nearer (body units):
# a flat torso must not hide the shoulder on its own corner.
DEPTH_MARGIN = 0.03
_OCCLUDER_ID = 1 << 30


@dataclass
class Instance:
    """One rendered figure. keypoints: (K, 3) x, y, v in pixels; box: (4,) xywh."""

    skeleton: str
    keypoints: np.ndarray
    box: np.ndarray


def _view(family: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, biased like photo collections: people mostly face the
    camera and stand upright, animals are mostly seen in profile, hands mostly point up.

    Every view is still possible, but the common ones dominate: with uniform yaw and roll a
    small model spends most of a short CPU run resolving front/back and left/right from a few
    face pixels (measured: most human errors were left/right swaps).
    """
    if family == "human":
        if rng.random() < 0.75:
            yaw = float(np.clip(rng.normal(0, 30), -80, 80))  # the face shows
        else:
            yaw = rng.uniform(-180, 180)
        roll = rng.normal(0, 10) if rng.random() < 0.9 else rng.uniform(-90, 90)
        return yaw, rng.uniform(-15, 15), roll
    if family == "animal":
        yaw = rng.choice([-90.0, 90.0]) + rng.normal(0, 30) if rng.random() < 0.8 \
            else rng.uniform(-180, 180)
        return yaw, rng.uniform(-25, 10), rng.normal(0, 10)
    return rng.uniform(-60, 60) + (180 if rng.random() < 0.1 else 0), \
        rng.uniform(-40, 40), rng.uniform(-60, 60)


@dataclass
class Projected:
    xy: np.ndarray  # (K, 2) keypoints in pixels
    depth: np.ndarray  # (K,) body units, smaller is nearer
    parts: list[tuple[Part, np.ndarray, float, float]]  # part, (n, 2) pixels, depth, radius px
    scale: float


def project(fig: Figure, rot: np.ndarray, scale: float, offset: np.ndarray) -> Projected:
    joints = fig.joints @ rot.T  # (K, 3)
    parts = []
    for part in fig.parts:
        pts = part.points @ rot.T
        parts.append((part, pts[:, :2] * scale + offset, float(pts[:, 2].mean()),
                      part.radius * scale))
    return Projected(joints[:, :2] * scale + offset, joints[:, 2], parts, scale)


def _extent(proj: Projected, marker_px: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of the figure: in-box parts with their thickness, and the markers."""
    lows, highs = [proj.xy - marker_px[:, None]], [proj.xy + marker_px[:, None]]
    for part, xy, _, radius in proj.parts:
        if part.in_box:
            lows.append(xy - radius)
            highs.append(xy + radius)
    return np.concatenate([np.concatenate(lows).min(0), np.concatenate(highs).max(0)])


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _SCALE).astype(np.int32)


def _draw_part(image, ids, part: Part, xy, radius, color, part_id: int) -> None:
    thick = max(1, int(round(2 * radius)))
    outline = tuple(float(c) for c in np.asarray(color) * 0.45)
    color = tuple(float(c) for c in color)
    pts = _fixed(xy)
    if part.kind == "capsule":
        cv2.polylines(image, [pts], False, outline, thick + 2, cv2.LINE_AA, SHIFT)
        cv2.polylines(image, [pts], False, color, thick, cv2.LINE_AA, SHIFT)
        cv2.polylines(ids, [pts], False, part_id, thick + 2, cv2.LINE_8, SHIFT)
    elif part.kind == "polygon":
        cv2.polylines(image, [pts], True, outline, thick + 2, cv2.LINE_AA, SHIFT)
        cv2.fillPoly(image, [pts], color, cv2.LINE_AA, SHIFT)
        cv2.polylines(image, [pts], True, color, thick, cv2.LINE_AA, SHIFT)
        cv2.fillPoly(ids, [pts], part_id, cv2.LINE_8, SHIFT)
        cv2.polylines(ids, [pts], True, part_id, thick + 2, cv2.LINE_8, SHIFT)
    else:  # disc
        r = int(round(radius * _SCALE))
        centre = tuple(int(v) for v in pts[0])
        cv2.circle(image, centre, r + _SCALE, outline, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(image, centre, r, color, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(ids, centre, r + _SCALE, part_id, -1, cv2.LINE_8, SHIFT)


def _draw_marker(image, ids, shape: str, x: float, y: float, r: float, color, mid: int) -> None:
    color = tuple(float(c) for c in color)
    centre = np.array([x, y])
    if shape == "disc":
        cv2.circle(image, tuple(int(v) for v in _fixed(centre)), int(r * _SCALE), color, -1,
                   cv2.LINE_AA, SHIFT)
    elif shape == "ring":
        cv2.circle(image, tuple(int(v) for v in _fixed(centre)), int(r * 0.8 * _SCALE), color,
                   max(1, int(round(r * 0.5))), cv2.LINE_AA, SHIFT)
    elif shape == "cross":
        for d in (np.array([r, r]), np.array([r, -r])):
            cv2.line(image, tuple(int(v) for v in _fixed(centre - d)),
                     tuple(int(v) for v in _fixed(centre + d)), color,
                     max(1, int(round(r * 0.55))), cv2.LINE_AA, SHIFT)
    else:
        corners = {"square": [(-1, -1), (1, -1), (1, 1), (-1, 1)],
                   "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
                   "triangle": [(0, -1.3), (1.2, 0.9), (-1.2, 0.9)]}[shape]
        poly = centre + r * 0.85 * np.asarray(corners, dtype=np.float64)
        cv2.fillPoly(image, [_fixed(poly)], color, cv2.LINE_AA, SHIFT)
    cv2.circle(ids, tuple(int(v) for v in _fixed(centre)), max(1, int(r * _SCALE)), mid, -1,
               cv2.LINE_8, SHIFT)


def _place(family: str, rng, h: int, w: int, target: float, boxes: list[np.ndarray],
           concepts: list[int]):
    """Pose, view and position one figure so its box has max side `target` pixels, at least
    70% of its keypoints lie in the image, and it overlaps earlier figures little."""
    for attempt in range(30):
        fig = BUILDERS[family](rng)
        rot = rotation(*_view(family, rng))
        unit = project(fig, rot, 1.0, np.zeros(2))
        marker = np.array([CONCEPTS[c].marker.size for c in concepts])
        x0, y0, x1, y1 = _extent(unit, marker)
        scale = target / max(x1 - x0, y1 - y0)
        centre = rng.uniform([0.12 * w, 0.12 * h], [0.88 * w, 0.88 * h])
        offset = centre - scale * np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        proj = project(fig, rot, scale, offset)
        inside = _in_image(proj.xy, h, w)
        box = _extent(proj, marker * scale)
        if inside.mean() >= 0.7 and (attempt >= 25 or all(_iou(box, b) < 0.35 for b in boxes)):
            return fig, proj, box
    return fig, proj, box


def _in_image(xy: np.ndarray, h: int, w: int) -> np.ndarray:
    return (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def _shade(depth: float, centre: float) -> float:
    # The near side is lighter, the far side darker: the honest left/right cue (figure.py).
    return min(max(1.0 - 1.6 * (depth - centre), 0.45), 1.3)


def draw_instance(image: np.ndarray, ids: np.ndarray, proj: Projected, number: int,
                  concepts: list[int], rng: np.random.Generator) -> None:
    """Draw one projected figure far to near, then the markers of the keypoints it does not
    hide itself. ids: (H, W) int32 buffer; parts get (number << 16) + 1 + part index and
    markers (number << 16) + 0x8000 + keypoint index (see `marker_id`)."""
    h, w = image.shape[:2]
    base = number << 16
    centre = float(proj.depth.mean())
    order = sorted(range(len(proj.parts)), key=lambda i: -proj.parts[i][2])
    for i in order:
        part, xy, depth, radius = proj.parts[i]
        color = np.minimum(part.color * _shade(depth, centre), 255.0)
        _draw_part(image, ids, part, xy, radius, color, base + 1 + i)
    jitter = rng.uniform(0.85, 1.1) * (1 + rng.uniform(-0.08, 0.08, size=3))
    inside = _in_image(proj.xy, h, w)
    # Decide self-occlusion from the parts alone, before any marker is drawn.
    shown = []
    for k in np.flatnonzero(inside):
        x, y = proj.xy[k]
        top = int(ids[int(round(y)), int(round(x))])
        if top >> 16 == number:
            part, _, depth, _ = proj.parts[(top & 0xFFFF) - 1]
            if k not in part.joints and depth < proj.depth[k] - DEPTH_MARGIN:
                continue  # hidden behind its own body: no marker
        shown.append(int(k))
    for k in sorted(shown, key=lambda k: -proj.depth[k]):  # far markers first
        style = CONCEPTS[concepts[k]].marker
        color = np.minimum(np.asarray(style.color) * jitter
                           * _shade(float(proj.depth[k]), centre), 255.0)
        radius = max(1.3, style.size * proj.scale)
        x, y = proj.xy[k]
        _draw_marker(image, ids, style.shape, float(x), float(y), radius, color,
                     marker_id(number, k))


def marker_id(number: int, keypoint: int) -> int:
    """The id-buffer value of keypoint `keypoint`'s marker on figure `number` (1-based)."""
    return (number << 16) + 0x8000 + keypoint


def visibility(proj: Projected, number: int, ids: np.ndarray) -> np.ndarray:
    """(K,) COCO v: 2 where the keypoint's own marker is on top, 1 under something, 0 outside."""
    h, w = ids.shape
    inside = _in_image(proj.xy, h, w)
    vis = inside.astype(np.int64)
    for k in np.flatnonzero(inside):
        x, y = proj.xy[k]
        if ids[int(round(y)), int(round(x))] == marker_id(number, k):
            vis[k] = 2
    return vis


def render_image(family: str, rng: np.random.Generator) -> tuple[np.ndarray, list[Instance]]:
    """image: (H, W, 3) uint8 BGR; one Instance per figure, all of the same `family`."""
    h, w = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
    skeleton = FAMILY_SKELETON[family]
    concepts = concept_index(skeleton)
    image = textured_background(rng, h, w)
    count = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    lo, hi = {1: (0.45, 0.95), 2: (0.35, 0.7), 3: (0.28, 0.55)}[count]
    targets = rng.uniform(lo, hi, size=count) * min(h, w)
    stick = max(1, int(targets.mean() * 0.03))
    draw_clutter(rng, image, int(rng.integers(4, 16)), (stick, stick * 2))
    ids = np.zeros((h, w), dtype=np.int32)

    placed = []
    boxes: list[np.ndarray] = []
    for n, target in enumerate(np.sort(targets)):  # smaller (farther) figures first
        fig, proj, box = _place(family, rng, h, w, float(target), boxes, concepts)
        boxes.append(box)
        placed.append(proj)
        draw_instance(image, ids, proj, n + 1, concepts, rng)

    _draw_occluders(rng, image, ids, boxes)
    instances = []
    for n, (proj, box) in enumerate(zip(placed, boxes, strict=True)):
        vis = visibility(proj, n + 1, ids)
        inside = vis > 0
        clipped = np.array([max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)])
        keypoints = np.concatenate([proj.xy * inside[:, None], vis[:, None]], axis=1)
        instances.append(Instance(skeleton, keypoints,
                                  np.array([clipped[0], clipped[1], clipped[2] - clipped[0],
                                            clipped[3] - clipped[1]])))
    return _camera_noise(rng, image), instances


def _draw_occluders(rng, image: np.ndarray, ids: np.ndarray, boxes: list[np.ndarray]) -> None:
    """Random textured polygons over some figures (joints under them become v=1)."""
    h, w = image.shape[:2]
    for n, box in enumerate(boxes):
        if rng.random() >= 0.25:
            continue
        size = max(box[2] - box[0], box[3] - box[1])
        x, y = rng.uniform(box[:2], box[2:])
        poly = random_polygon(rng, float(x), float(y), float(size * rng.uniform(0.12, 0.3)))
        x0, y0 = np.maximum(poly.min(0), 0)
        x1, y1 = np.minimum(poly.max(0) + 1, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(mask, [poly - [x0, y0]], 1)
        texture = textured_background(rng, y1 - y0, x1 - x0)
        covered = mask.astype(bool)
        image[y0:y1, x0:x1][covered] = texture[covered]
        ids[y0:y1, x0:x1][covered] = _OCCLUDER_ID + n


def _camera_noise(rng, image: np.ndarray) -> np.ndarray:
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    # Sensor grain, grey (one channel drawn, added to all three: a third of the cost).
    noise = rng.standard_normal(size=image.shape[:2], dtype=np.float32) * rng.uniform(2, 7)
    return cv2.add(image, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
