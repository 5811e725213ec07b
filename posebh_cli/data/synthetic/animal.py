"""A four-legged animal with the AP-10K keypoints, posed in 3D (body frame: see figure.py).

The body runs along z (head at -z, "front"), legs hang along +y. Proportions vary per instance
(leg length, neck length, body thickness) so the figures span dog-, horse- and cat-like shapes.
Body length (shoulder to hip) is about 0.75; a standing figure is about 1 long and 0.8 tall.
"""

from __future__ import annotations

import numpy as np

from posebh_cli.data.synthetic.figure import (
    BACK,
    DOWN,
    FRONT,
    LEFT,
    UP,
    Figure,
    random_color,
    tilt,
    unit,
)

# AP-10K indices (order in concepts.SKELETON_ORDERS["ap10k"]).
L_EYE, R_EYE, NOSE, NECK, TAIL = 0, 1, 2, 3, 4
L_SHOULDER, L_ELBOW, L_FPAW, R_SHOULDER, R_ELBOW, R_FPAW = 5, 6, 7, 8, 9, 10
L_HIP, L_KNEE, L_BPAW, R_HIP, R_KNEE, R_BPAW = 11, 12, 13, 14, 15, 16


def _leg(rng, root, upper_len: float, lower_len: float, front_leg: bool, gait: str):
    swing = rng.uniform(-35, 35) if gait == "run" else rng.uniform(-12, 12)
    if gait == "lie":
        swing = rng.uniform(55, 85) if front_leg else rng.uniform(-85, -55)
    upper = tilt(DOWN, FRONT, swing)
    upper = tilt(upper, LEFT * np.sign(root[0] + 1e-9), rng.uniform(-5, 12))
    # Front legs fold backward at the elbow; hind legs fold forward at the knee (stifle).
    fold = BACK if front_leg else FRONT
    bend = rng.uniform(0, 70) if gait == "run" else rng.uniform(0, 25)
    if gait == "lie":
        bend = rng.uniform(60, 120)
    lower = tilt(upper, fold, bend)
    joint = root + upper_len * upper
    return joint, joint + lower_len * lower


def sample_animal(rng: np.random.Generator) -> Figure:
    """A posed AP-10K figure; joints (17, 3) in body units, parts with per-instance colours."""
    joints = np.zeros((17, 3))
    gait = str(rng.choice(["stand", "run", "lie"], p=[0.5, 0.4, 0.1]))
    body_len = rng.uniform(0.6, 0.85)
    leg_len = rng.uniform(0.45, 0.85) * (0.75 if gait == "lie" else 1.0)
    half_width = rng.uniform(0.08, 0.12)
    arch = rng.uniform(-0.05, 0.05)
    withers = np.array([0.0, arch, -body_len / 2])
    croup = np.array([0.0, -arch, body_len / 2])
    joints[L_SHOULDER], joints[R_SHOULDER] = (withers + half_width * LEFT + 0.05 * DOWN,
                                              withers - half_width * LEFT + 0.05 * DOWN)
    joints[L_HIP], joints[R_HIP] = (croup + half_width * LEFT + 0.05 * DOWN,
                                    croup - half_width * LEFT + 0.05 * DOWN)
    joints[TAIL] = croup + np.array([0.0, -0.03, 0.08])
    neck_dir = unit(FRONT * rng.uniform(0.5, 1.0) + UP * rng.uniform(0.2, 1.2))
    joints[NECK] = withers + 0.1 * neck_dir + 0.02 * UP
    # Head: pitch up / down and turn sideways on the neck; the snout points along head_dir.
    head_dir = tilt(FRONT, UP if rng.random() < 0.6 else DOWN, rng.uniform(0, 45))
    head_dir = tilt(head_dir, LEFT * rng.choice([-1.0, 1.0]), rng.uniform(0, 45))
    head = joints[NECK] + rng.uniform(0.15, 0.3) * neck_dir
    snout = rng.uniform(0.1, 0.18)
    joints[NOSE] = head + snout * head_dir
    side = unit(np.cross(head_dir, DOWN))  # the animal's left, perpendicular to the snout
    if np.dot(side, LEFT) < 0:
        side = -side
    for eye, sign in ((L_EYE, 1.0), (R_EYE, -1.0)):
        joints[eye] = head + 0.045 * sign * side + 0.03 * head_dir + 0.03 * UP
    for root, (j, p), front in ((L_SHOULDER, (L_ELBOW, L_FPAW), True),
                                (R_SHOULDER, (R_ELBOW, R_FPAW), True),
                                (L_HIP, (L_KNEE, L_BPAW), False),
                                (R_HIP, (R_KNEE, R_BPAW), False)):
        joints[j], joints[p] = _leg(rng, joints[root], 0.48 * leg_len, 0.52 * leg_len, front, gait)

    fig = Figure("ap10k", joints)
    fur = random_color(rng, 40, 220)
    dark = fur * rng.uniform(0.4, 0.7)
    thin = rng.uniform(0.7, 1.2)
    body_r = rng.uniform(0.09, 0.15)
    # The trunk carries the keypoints on its surface (shoulders, hips, tail root).
    fig.add("capsule", [withers + 0.04 * DOWN, croup + 0.04 * DOWN], body_r, fur,
            (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, TAIL))
    fig.add("capsule", [withers, joints[NECK], head], 0.055 * thin, fur, (NECK,))
    fig.add("disc", [head], 0.07, fur)
    fig.add("capsule", [head, joints[NOSE]], 0.038, fur, (NOSE,))
    for sign in (1.0, -1.0):  # ears: small triangles on top of the head
        base = head + 0.04 * sign * side + 0.03 * UP
        fig.add("polygon", [base - 0.025 * head_dir, base + 0.02 * head_dir,
                            base + 0.08 * UP + 0.02 * sign * side], 0.005, dark)
    tail_tip = joints[TAIL] + rng.uniform(0.15, 0.4) * unit(
        BACK + rng.uniform(-0.8, 1.0) * DOWN + rng.uniform(-0.4, 0.4) * LEFT)
    fig.add("capsule", [joints[TAIL], tail_tip], 0.022 * thin, dark, (TAIL,), in_box=False)
    for root, j, p in ((L_SHOULDER, L_ELBOW, L_FPAW), (R_SHOULDER, R_ELBOW, R_FPAW),
                       (L_HIP, L_KNEE, L_BPAW), (R_HIP, R_KNEE, R_BPAW)):
        fig.limb(root, j, 0.04 * thin, fur)
        fig.limb(j, p, 0.028 * thin, fur)
        # Paws point forward (a side cue in profile).
        fig.add("capsule", [joints[p], joints[p] + 0.05 * FRONT], 0.022 * thin, dark, (p,))
    return fig
