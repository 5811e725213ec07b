"""A posed 3D figure in its body frame: keypoints plus the drawable parts around them.

Body frame (all families): x = the figure's own left, y = down, z = the figure's back, so a
figure with yaw 0 faces the camera (the camera looks along +z; smaller z is nearer). Units: the
figure's height (human, hand) or body length (quadruped) is about 1.

Posing in 3D and projecting is what makes the left/right cue honest: the near side is drawn on
top and lighter, the face shows only when it faces the camera, feet and snouts point forward.
A mirrored image is then again a valid rendering with swapped labels (PERF.md, "Generator trap").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DOWN = np.array([0.0, 1.0, 0.0])
UP = -DOWN
FRONT = np.array([0.0, 0.0, -1.0])
BACK = -FRONT
LEFT = np.array([1.0, 0.0, 0.0])


@dataclass
class Part:
    """One drawable piece.

    kind: "capsule" (polyline of `points` with half-thickness `radius`), "polygon" (filled
        outline of `points`, rounded by `radius`), "disc" (circle at points[0] of `radius`),
        "ellipse" (points[0] centre, points[1] tip of the major half-axis, `radius` minor).
    points: (n, 3) body-frame coordinates.
    color: BGR base colour 0..255, shaded by depth when drawn.
    joints: keypoint indices this part carries; a part never hides its own keypoints.
    in_box: whether the part counts for the ground-truth box (a forearm stub under a hand,
        a tail tip do not).
    """

    kind: str
    points: np.ndarray
    radius: float
    color: np.ndarray
    joints: tuple[int, ...] = ()
    in_box: bool = True


@dataclass
class Figure:
    """joints: (K, 3) body-frame keypoints in skeleton order; parts drawn around them."""

    skeleton: str
    joints: np.ndarray
    parts: list[Part] = field(default_factory=list)

    def add(self, kind: str, points, radius: float, color, joints: tuple[int, ...] = (),
            in_box: bool = True) -> None:
        self.parts.append(Part(kind, np.atleast_2d(np.asarray(points, dtype=np.float64)),
                               float(radius), np.asarray(color, dtype=np.float64),
                               tuple(joints), in_box))

    def limb(self, a: int, b: int, radius: float, color) -> None:
        """A capsule between keypoints a and b."""
        self.add("capsule", self.joints[[a, b]], radius, color, (a, b))


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def tilt(v: np.ndarray, toward: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate unit vector `v` by `degrees` in the plane spanned by v and `toward`."""
    v = unit(v)
    perp = toward - np.dot(toward, v) * v
    if np.linalg.norm(perp) < 1e-9:
        return v
    perp = unit(perp)
    angle = np.deg2rad(degrees)
    return np.cos(angle) * v + np.sin(angle) * perp


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) camera-from-body rotation: yaw about the body's vertical, then pitch, then the
    in-image roll. Angles in degrees."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def random_color(rng: np.random.Generator, lo: int = 30, hi: int = 230) -> np.ndarray:
    return rng.uniform(lo, hi, size=3)
