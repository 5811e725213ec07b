"""A human-like figure with the COCO-17 keypoints, posed in 3D (body frame: see figure.py).

Joint angles are drawn within loose human limits: arms swing and abduct, elbows and knees
bend one way only, the torso leans and twists, the head turns. Height is about 1.
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
    rotation,
    tilt,
    unit,
)

# COCO-17 indices (order in concepts.SKELETON_ORDERS["coco"]).
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16


def _arm(rng, shoulder, side: float, up_len: float, fore_len: float):
    # Upper arm: from hanging down, abduct outward (towards the arm's side) and flex forward.
    outward = LEFT * side
    upper = tilt(DOWN, outward, rng.uniform(-5, 100))
    upper = tilt(upper, FRONT if rng.random() < 0.8 else BACK, rng.uniform(0, 110))
    # Elbow: the forearm bends toward the front / the body's midline only.
    bend_dir = unit(FRONT + rng.uniform(-0.2, 0.8) * -outward + rng.uniform(-0.3, 0.6) * UP)
    fore = tilt(upper, bend_dir, rng.uniform(0, 135))
    elbow = shoulder + up_len * upper
    return elbow, elbow + fore_len * fore


def _leg(rng, hip, side: float, thigh_len: float, shin_len: float, pose: str):
    outward = LEFT * side
    if pose == "sit":
        flex = rng.uniform(60, 100)
    elif pose == "stride":
        flex = rng.uniform(-30, 60)
    else:
        flex = rng.uniform(-10, 20)
    thigh = tilt(DOWN, FRONT, flex)
    thigh = tilt(thigh, outward, rng.uniform(-8, 30))
    # Knees bend backward only.
    knee_bend = rng.uniform(40, 110) if pose == "sit" else rng.uniform(0, 90 if pose else 20)
    shin = tilt(thigh, BACK + 0.2 * DOWN, knee_bend)
    knee = hip + thigh_len * thigh
    return knee, knee + shin_len * shin


def sample_human(rng: np.random.Generator) -> Figure:
    """A posed COCO-17 figure; joints (17, 3) in body units, parts with per-instance colours."""
    joints = np.zeros((17, 3))
    pose = str(rng.choice(["stand", "stride", "sit"], p=[0.45, 0.4, 0.15]))
    build = rng.uniform(0.85, 1.15)  # shoulder / hip width factor
    hip_half, shoulder_half = 0.085 * build, 0.16 * build
    # Torso: lean and twist about the pelvis.
    lean = rotation(rng.uniform(-12, 12), rng.uniform(-20, 10), rng.uniform(-12, 12))
    twist = rotation(rng.uniform(-25, 25), 0, 0)
    pelvis = np.zeros(3)
    chest = pelvis + lean @ np.array([0.0, -0.42, 0.0])
    joints[L_HIP], joints[R_HIP] = pelvis + hip_half * LEFT, pelvis - hip_half * LEFT
    across = lean @ twist @ LEFT
    joints[L_SHOULDER] = chest + shoulder_half * across
    joints[R_SHOULDER] = chest - shoulder_half * across
    neck = chest + lean @ np.array([0.0, -0.06, 0.0])
    # Head: turn and nod relative to the torso; face points sit on the front of the skull.
    head_rot = lean @ twist @ rotation(rng.uniform(-50, 50), rng.uniform(-25, 25),
                                       rng.uniform(-15, 15))
    head = neck + lean @ np.array([0.0, -0.1, 0.0])
    head_r = 0.085
    face = {NOSE: (0.0, 0.015, -0.095), L_EYE: (0.035, -0.018, -0.082),
            R_EYE: (-0.035, -0.018, -0.082), L_EAR: (0.085, 0.0, 0.005),
            R_EAR: (-0.085, 0.0, 0.005)}
    for k, offset in face.items():
        joints[k] = head + head_rot @ np.asarray(offset)
    limb_scale = rng.uniform(0.9, 1.1)
    for side, (s, e, w) in ((1.0, (L_SHOULDER, L_ELBOW, L_WRIST)),
                            (-1.0, (R_SHOULDER, R_ELBOW, R_WRIST))):
        joints[e], joints[w] = _arm(rng, joints[s], side, 0.27 * limb_scale, 0.24 * limb_scale)
    for side, (h, k, a) in ((1.0, (L_HIP, L_KNEE, L_ANKLE)), (-1.0, (R_HIP, R_KNEE, R_ANKLE))):
        joints[k], joints[a] = _leg(rng, joints[h], side, 0.41 * limb_scale, 0.4 * limb_scale,
                                    pose)

    fig = Figure("coco", joints)
    skin = np.array([rng.uniform(60, 200), rng.uniform(90, 210), rng.uniform(120, 235)])
    shirt, trousers = random_color(rng), random_color(rng)
    thin = rng.uniform(0.65, 1.2)  # limb thickness variation
    fig.add("polygon", joints[[L_SHOULDER, R_SHOULDER, R_HIP, L_HIP]], 0.035 * thin, shirt,
            (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP))
    fig.add("capsule", [chest, head], 0.035 * thin, skin)
    # The skull does not carry the face points: depth decides (the far ear hides behind it).
    fig.add("disc", [head], head_r, skin)
    # Hair on the back half of the skull: a front/back cue that survives blur.
    hair = random_color(rng, 10, 120)
    fig.add("disc", [head + head_rot @ np.array([0.0, -0.02, 0.04])], head_r * 0.9, hair)
    for s, e, w in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        fig.limb(s, e, 0.035 * thin, shirt)
        fig.limb(e, w, 0.028 * thin, skin)
    for h, k, a in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        fig.limb(h, k, 0.045 * thin, trousers)
        fig.limb(k, a, 0.036 * thin, trousers)
        # Feet point forward: a side cue in profile views.
        foot = joints[a] + 0.09 * unit(FRONT + 0.25 * DOWN)
        fig.add("capsule", [joints[a], foot], 0.025 * thin, hair, (a,))
    return fig
