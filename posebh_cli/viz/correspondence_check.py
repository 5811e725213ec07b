"""How many pairs of a known cross-skeleton correspondence table the prototypes recover.

The expected table is a JSON object with a "pairs" list of {skeleton_a, keypoint_a, skeleton_b,
keypoint_b}: the synthetic generator writes one (`correspondence.json` beside the data of `posebh
prepare synthetic`), and the same layout can be written by hand for real skeletons.
A pair is recovered in the direction a -> b when keypoint_a's best-matching keypoint of skeleton b
(highest prototype similarity, the "match" of visualize-prototypes) is keypoint_b, and likewise in
the direction b -> a. A keypoint with several acceptable partners (an unsided hand wrist matches
both human wrists) counts once per direction, recovered when its match is any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posebh_cli.data.readers.common import load_json
from posebh_cli.errors import PosebhError

PAIR_KEYS = ("skeleton_a", "keypoint_a", "skeleton_b", "keypoint_b")
Pair = tuple[str, str, str, str]


def read_expected_pairs(path: Path) -> list[Pair]:
    """The (skeleton_a, keypoint_a, skeleton_b, keypoint_b) pairs of an expected table."""
    data = load_json(path, "expected correspondence file")
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list) or not pairs:
        raise PosebhError(f"{path}: expected a JSON object with a non-empty 'pairs' list of "
                          f"{{{', '.join(PAIR_KEYS)}}}")
    result = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(isinstance(pair.get(k), str) for k in PAIR_KEYS):
            raise PosebhError(f"{path}: pairs[{i}]: expected the string keys "
                              f"{', '.join(PAIR_KEYS)}")
        result.append(tuple(pair[k] for k in PAIR_KEYS))
    return result


def score_correspondences(found: Sequence[dict[str, Any]], expected: Sequence[Pair],
                          source: str = "expected correspondences") -> dict[str, Any]:
    """found: visualize-prototypes' pairs ({skeleton_a, skeleton_b, matches: [{keypoint,
    match}]}); expected: pairs as read_expected_pairs gives. Only pairs whose two skeletons are
    both in `found` are scored. Returns recovered, total, fraction and the missed directions."""
    best = {(p["skeleton_a"], m["keypoint"], p["skeleton_b"]): m["match"]
            for p in found for m in p["matches"]}
    accepted: dict[tuple[str, str, str], set[str]] = {}
    for skel_a, kp_a, skel_b, kp_b in expected:
        accepted.setdefault((skel_a, kp_a, skel_b), set()).add(kp_b)
        accepted.setdefault((skel_b, kp_b, skel_a), set()).add(kp_a)
    scored = {key: partners for key, partners in accepted.items() if key in best}
    if not scored:
        skeletons = sorted({p["skeleton_a"] for p in found})
        raise PosebhError(f"{source}: no pair joins two skeletons of this run "
                          f"({', '.join(skeletons)}); check the skeleton and keypoint names")
    missed = [f"{a}/{kp} -> {b}: {best[(a, kp, b)]} (expected {' or '.join(sorted(partners))})"
              for (a, kp, b), partners in scored.items() if best[(a, kp, b)] not in partners]
    recovered = len(scored) - len(missed)
    return {"recovered": recovered, "total": len(scored), "fraction": recovered / len(scored),
            "missed": missed}
