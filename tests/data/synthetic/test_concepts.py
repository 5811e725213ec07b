"""The correspondence table: names exist, every keypoint has one concept, pairs respect sides."""

from __future__ import annotations

from posebh_cli.data.synthetic.concepts import (
    CONCEPTS,
    SKELETON_ORDERS,
    check_skeleton_orders,
    concept_index,
    correspondence_table,
    keypoint_pairs,
)
from posebh_cli.skeletons import get_skeleton


def test_orders_match_the_skeleton_specs():
    check_skeleton_orders()  # raises when a spec's order differs
    for name in SKELETON_ORDERS:
        assert len(SKELETON_ORDERS[name]) == get_skeleton(name).num_keypoints


def test_every_keypoint_has_exactly_one_concept():
    for skeleton, order in SKELETON_ORDERS.items():
        members = [n for c in CONCEPTS for n in c.members.get(skeleton, ())]
        assert sorted(members) == sorted(order), skeleton
        assert len(concept_index(skeleton)) == len(order)


def test_table_names_exist_in_the_skeletons():
    table = correspondence_table()
    for row in table["concepts"]:
        for skeleton in SKELETON_ORDERS:
            for name in row[skeleton]:
                assert name in get_skeleton(skeleton).keypoints
    for pair in table["pairs"]:
        a, b = get_skeleton(pair["skeleton_a"]), get_skeleton(pair["skeleton_b"])
        assert a.keypoints[pair["index_a"]] == pair["keypoint_a"]
        assert b.keypoints[pair["index_b"]] == pair["keypoint_b"]


def test_pairs_match_sides_and_unsided_keypoints_match_both():
    pairs = {(p["keypoint_a"], p["keypoint_b"]) for p in keypoint_pairs()
             if (p["skeleton_a"], p["skeleton_b"]) in {("coco", "ap10k"), ("coco", "onehand10k"),
                                                       ("ap10k", "onehand10k")}}
    assert ("left_wrist", "left_front_paw") in pairs
    assert ("left_wrist", "right_front_paw") not in pairs
    assert ("right_knee", "right_knee") in pairs
    assert ("left_ankle", "left_back_paw") in pairs
    assert ("nose", "nose") in pairs
    assert ("left_wrist", "wrist") in pairs and ("right_wrist", "wrist") in pairs
    assert ("left_front_paw", "wrist") in pairs
    # Concepts present in one skeleton only give no pairs.
    assert not any("thumb4" in pair for pair in pairs)
