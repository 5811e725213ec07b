"""The generator's ground truth of cross-skeleton correspondence: concepts and their markers.

A *concept* is a body part that several skeletons share (an eye, a knee, the end of a front
limb). The renderer draws every keypoint of one concept with the same marker (shape, colour
family, size), whatever the skeleton, so a model that learns shared keypoint prototypes
(METHOD.md §2) can discover that COCO's left wrist and AP-10K's left front paw are one thing.
Left and right keypoints of a concept share one marker on purpose: the side cue comes from the
3D view (shading by depth, the face, the feet), never from the label, so flip-with-swap stays
consistent (PERF.md, "Generator trap").

`correspondence_table()` is written to `correspondence.json` next to the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

# The keypoint orders the figure builders index into (checked against the skeleton specs at
# run time by `check_skeleton_orders`).
SKELETON_ORDERS: dict[str, tuple[str, ...]] = {
    "coco": (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle",
    ),
    "ap10k": (
        "left_eye", "right_eye", "nose", "neck", "root_of_tail",
        "left_shoulder", "left_elbow", "left_front_paw", "right_shoulder", "right_elbow",
        "right_front_paw", "left_hip", "left_knee", "left_back_paw", "right_hip",
        "right_knee", "right_back_paw",
    ),
    "onehand10k": (
        "wrist",
        *(f"{finger}{n}" for finger in ("thumb", "forefinger", "middle_finger",
                                        "ring_finger", "pinky_finger") for n in (1, 2, 3, 4)),
    ),
}

# Which skeleton each synthetic family is annotated with.
FAMILY_SKELETON: dict[str, str] = {"human": "coco", "animal": "ap10k", "hand": "onehand10k"}


@dataclass(frozen=True)
class MarkerStyle:
    """How a concept's keypoints are drawn.

    shape: one of "disc", "ring", "square", "diamond", "triangle", "cross".
    color: BGR base colour (0..255); the renderer jitters it per instance and shades it by depth.
    size: marker radius in the figure's body units (figure height ~1).
    """

    shape: str
    color: tuple[int, int, int]
    size: float


@dataclass(frozen=True)
class Concept:
    name: str
    description: str
    members: dict[str, tuple[str, ...]]  # skeleton -> keypoint names of this concept
    marker: MarkerStyle


def _fingers(joint: int) -> tuple[str, ...]:
    return tuple(f"{finger}{joint}" for finger in ("thumb", "forefinger", "middle_finger",
                                                   "ring_finger", "pinky_finger"))


CONCEPTS: tuple[Concept, ...] = (
    Concept("eye", "eyes", {"coco": ("left_eye", "right_eye"),
                            "ap10k": ("left_eye", "right_eye")},
            MarkerStyle("disc", (235, 235, 235), 0.022)),
    Concept("nose", "tip of the nose / snout", {"coco": ("nose",), "ap10k": ("nose",)},
            MarkerStyle("triangle", (40, 40, 215), 0.028)),
    Concept("ear", "ears", {"coco": ("left_ear", "right_ear")},
            MarkerStyle("ring", (60, 200, 230), 0.026)),
    Concept("neck", "base of the neck", {"ap10k": ("neck",)},
            MarkerStyle("cross", (200, 200, 40), 0.03)),
    Concept("shoulder", "root of a front / upper limb",
            {"coco": ("left_shoulder", "right_shoulder"),
             "ap10k": ("left_shoulder", "right_shoulder")},
            MarkerStyle("square", (210, 90, 30), 0.03)),
    Concept("elbow", "middle joint of a front / upper limb",
            {"coco": ("left_elbow", "right_elbow"), "ap10k": ("left_elbow", "right_elbow")},
            MarkerStyle("ring", (200, 40, 200), 0.028)),
    Concept("front_limb_end", "end of a front / upper limb: wrist, front paw, the hand's wrist",
            {"coco": ("left_wrist", "right_wrist"),
             "ap10k": ("left_front_paw", "right_front_paw"),
             "onehand10k": ("wrist",)},
            MarkerStyle("disc", (0, 215, 255), 0.03)),
    Concept("hip", "root of a hind / lower limb",
            {"coco": ("left_hip", "right_hip"), "ap10k": ("left_hip", "right_hip")},
            MarkerStyle("square", (40, 170, 40), 0.03)),
    Concept("knee", "middle joint of a hind / lower limb",
            {"coco": ("left_knee", "right_knee"), "ap10k": ("left_knee", "right_knee")},
            MarkerStyle("ring", (0, 130, 255), 0.028)),
    Concept("hind_limb_end", "end of a hind / lower limb: ankle, back paw",
            {"coco": ("left_ankle", "right_ankle"),
             "ap10k": ("left_back_paw", "right_back_paw")},
            MarkerStyle("diamond", (150, 60, 110), 0.032)),
    Concept("tail_root", "root of the tail", {"ap10k": ("root_of_tail",)},
            MarkerStyle("cross", (30, 90, 160), 0.03)),
    Concept("finger_base", "finger base (MCP / thumb CMC)", {"onehand10k": _fingers(1)},
            MarkerStyle("square", (170, 140, 20), 0.022)),
    Concept("finger_mid", "finger middle joints (PIP, DIP)",
            {"onehand10k": _fingers(2) + _fingers(3)},
            MarkerStyle("ring", (200, 40, 200), 0.02)),
    Concept("finger_tip", "finger tips", {"onehand10k": _fingers(4)},
            MarkerStyle("disc", (80, 240, 160), 0.024)),
)


def concept_index(skeleton: str) -> list[int]:
    """Concept id (row of CONCEPTS) for every keypoint of `skeleton`, in skeleton order."""
    by_name = {name: c for c, concept in enumerate(CONCEPTS)
               for name in concept.members.get(skeleton, ())}
    return [by_name[name] for name in SKELETON_ORDERS[skeleton]]


def _side(name: str) -> str:
    return "left" if name.startswith("left_") else "right" if name.startswith("right_") else ""


def keypoint_pairs() -> list[dict[str, Any]]:
    """Every cross-skeleton keypoint pair of one concept whose sides agree.

    A pair of sided keypoints matches only on the same side (left wrist ~ left front paw); an
    unsided keypoint (the hand's wrist, the nose) matches every member of the concept.
    """
    pairs = []
    for concept in CONCEPTS:
        for skel_a, skel_b in combinations(concept.members, 2):
            for name_a in concept.members[skel_a]:
                for name_b in concept.members[skel_b]:
                    side_a, side_b = _side(name_a), _side(name_b)
                    if side_a and side_b and side_a != side_b:
                        continue
                    pairs.append({
                        "concept": concept.name,
                        "skeleton_a": skel_a, "keypoint_a": name_a,
                        "index_a": SKELETON_ORDERS[skel_a].index(name_a),
                        "skeleton_b": skel_b, "keypoint_b": name_b,
                        "index_b": SKELETON_ORDERS[skel_b].index(name_b),
                    })
    return pairs


def correspondence_table() -> dict[str, Any]:
    """The JSON-ready ground truth: concepts (members + marker) and the keypoint pair list."""
    return {
        "description": (
            "Ground truth of the synthetic generator: keypoints of one concept are rendered "
            "with the same marker in every skeleton. 'pairs' lists cross-skeleton keypoint "
            "pairs of one concept on the same side (unsided keypoints match both sides)."
        ),
        "skeletons": {name: list(order) for name, order in SKELETON_ORDERS.items()},
        "concepts": [
            {"concept": c.name, "description": c.description,
             **{skel: list(c.members.get(skel, ())) for skel in SKELETON_ORDERS},
             "marker": {"shape": c.marker.shape, "bgr": list(c.marker.color),
                        "size": c.marker.size}}
            for c in CONCEPTS
        ],
        "pairs": keypoint_pairs(),
    }


def check_skeleton_orders() -> None:
    """Fail loudly when a skeleton spec's keypoint order differs from what the builders use."""
    from posebh_cli.skeletons import get_skeleton

    for name, order in SKELETON_ORDERS.items():
        found = get_skeleton(name).keypoints
        if tuple(found) != order:
            raise RuntimeError(
                f"skeleton '{name}' keypoint order {list(found)} differs from the synthetic "
                f"generator's {list(order)}"
            )
