"""A hand with the OneHand10K keypoints (wrist first, then thumb..pinky base to tip), in 3D.

Body frame: fingers point up (-y), the palm faces the camera (-z) at yaw 0, the thumb is on +x.
Fingers spread in the palm plane and curl toward the palm; a random mirror makes left hands
(OneHand10K does not label the side, so mirroring keeps the labels). Wrist to middle tip ~1.
"""

from __future__ import annotations

import numpy as np

from posebh_cli.data.synthetic.figure import DOWN, FRONT, LEFT, UP, Figure, tilt, unit

WRIST = 0
# finger -> (base position in the palm, phalanx lengths, spread in degrees toward the thumb)
_FINGERS = (
    ((0.17, -0.13, -0.03), (0.2, 0.16, 0.13), 38.0),   # thumb: CMC, MCP, IP, tip
    ((0.14, -0.46, 0.0), (0.23, 0.14, 0.1), 8.0),      # forefinger
    ((0.04, -0.49, 0.0), (0.26, 0.16, 0.1), 0.0),      # middle finger
    ((-0.06, -0.47, 0.0), (0.24, 0.15, 0.1), -7.0),    # ring finger
    ((-0.15, -0.42, 0.0), (0.18, 0.11, 0.09), -15.0),  # pinky
)


def sample_hand(rng: np.random.Generator) -> Figure:
    """A posed OneHand10K figure; joints (21, 3) in body units."""
    joints = np.zeros((21, 3))
    size = rng.uniform(0.9, 1.1, size=5)
    fist = rng.random() < 0.2  # a grip curls every finger together
    for f, (base, lengths, spread) in enumerate(_FINGERS):
        first = 1 + 4 * f
        joints[first] = np.asarray(base)
        if f == 0:
            direction = tilt(UP, LEFT, spread + rng.uniform(-15, 25))
            direction = tilt(direction, FRONT, rng.uniform(0, 50))
            curls = rng.uniform(0, 40, size=3)
        else:
            direction = tilt(UP, LEFT, spread + rng.uniform(-8, 8))
            low, high = (50, 95) if fist else (-10, 55)
            mcp = rng.uniform(low, high)
            pip = rng.uniform(0.6, 1.1) * (mcp + 20) if fist else rng.uniform(0, 70)
            curls = np.array([mcp, pip, 0.7 * pip])
        for n, (length, curl) in enumerate(zip(lengths, curls, strict=True)):
            # Each joint folds the finger further toward the palm side (-z).
            direction = tilt(direction, FRONT, curl)
            joints[first + n + 1] = joints[first + n] + length * size[f] * direction

    fig = Figure("onehand10k", joints)
    skin = np.array([rng.uniform(50, 190), rng.uniform(80, 205), rng.uniform(110, 235)])
    thin = rng.uniform(0.75, 1.2)
    sleeve = rng.uniform(20, 230, size=3)
    # A forearm stub below the wrist (not in the box, as in OneHand10K); it starts below the
    # wrist so it never paints over the wrist marker.
    fig.add("capsule", [joints[WRIST] + 0.12 * DOWN, joints[WRIST] + rng.uniform(0.4, 0.7) * DOWN],
            rng.uniform(0.09, 0.12), sleeve, in_box=False)
    palm = joints[[WRIST, 1, 5, 9, 13, 17]] + np.array([0.0, 0.0, 0.01])
    fig.add("polygon", palm + np.array([[0.06, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0],
                                        [0, 0, 0], [-0.02, 0, 0]]),
            0.04, skin, (WRIST, 1, 5, 9, 13, 17))
    for f in range(5):
        first = 1 + 4 * f
        radius = (0.05 if f == 0 else 0.042 if f < 4 else 0.036) * thin
        for n in range(3):
            fig.limb(first + n, first + n + 1, radius * (1.0 - 0.1 * n), skin)
    # Nails on the back of the finger tips: they show only in dorsal views (a palm/back cue).
    nail = np.clip(skin + 45, 0, 255)
    for f in range(5):
        tip, before = joints[4 + 4 * f], joints[3 + 4 * f]
        back = unit(np.cross(tip - before, LEFT)) if f else -FRONT
        if np.dot(back, -FRONT) < 0:
            back = -back
        fig.add("disc", [tip - 0.02 * unit(tip - before) + 0.02 * back], 0.018, nail)
    if rng.random() < 0.5:  # a left hand
        fig.joints[:, 0] *= -1
        for part in fig.parts:
            part.points[:, 0] *= -1
    return fig
