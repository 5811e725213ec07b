"""Scoring prototype matches against a known correspondence table, on hand-made cases."""

from __future__ import annotations

import json

import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.viz.correspondence_check import read_expected_pairs, score_correspondences


def _found(a: str, b: str, matches: dict[str, str]) -> dict:
    return {"skeleton_a": a, "skeleton_b": b,
            "matches": [{"keypoint": k, "match": m} for k, m in matches.items()]}


FOUND = [_found("A", "B", {"a1": "b1", "a2": "b3"}),
         _found("B", "A", {"b1": "a2", "b2": "a2", "b3": "a1"})]
# a2 is unsided: both b2 and b3 are its partners.
EXPECTED = [("A", "a1", "B", "b1"), ("A", "a2", "B", "b2"), ("A", "a2", "B", "b3"),
            ("A", "a1", "C", "c1")]  # skeleton C is not in the run: not scored


def test_each_keypoint_counts_once_per_direction() -> None:
    score = score_correspondences(FOUND, EXPECTED)
    # A->B: a1 -> b1 right, a2 -> b3 right (b2 or b3); B->A: b1 -> a2 wrong, b2 -> a2 right,
    # b3 -> a1 wrong.
    assert (score["recovered"], score["total"]) == (3, 5)
    assert score["fraction"] == pytest.approx(0.6)
    assert score["missed"] == ["B/b1 -> A: a2 (expected a1)", "B/b3 -> A: a1 (expected a2)"]


def test_no_pair_of_the_run_is_an_error() -> None:
    with pytest.raises(PosebhError, match="no pair joins two skeletons of this run"):
        score_correspondences(FOUND, [("A", "a1", "C", "c1")])


def test_read_expected_pairs_and_bad_files(tmp_path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"pairs": [dict(zip(("skeleton_a", "keypoint_a", "skeleton_b",
                                                    "keypoint_b"), EXPECTED[0]))]}))
    assert read_expected_pairs(good) == [EXPECTED[0]]
    for name, text, fragment in (
            ("list.json", "[]", "non-empty 'pairs' list"),
            ("empty.json", '{"pairs": []}', "non-empty 'pairs' list"),
            ("entry.json", '{"pairs": [{"skeleton_a": "A"}]}', "pairs[0]: expected the string"),
            ("cut.json", '{"pairs": [', "not valid JSON")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(PosebhError, match=fragment.replace("[", r"\[")):
            read_expected_pairs(path)
    with pytest.raises(PosebhError, match="not found"):
        read_expected_pairs(tmp_path / "missing.json")
