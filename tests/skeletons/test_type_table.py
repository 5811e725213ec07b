"""The global keypoint-type table over a recipe's datasets (METHOD.md §1, §8.1)."""

from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.skeletons.type_table import KeypointTypeTable

REFERENCE_MIXTURE = ["coco", "aic", "mpii", "ap10k", "apt36k", "coco_wholebody"]


@pytest.fixture
def reference() -> KeypointTypeTable:
    return KeypointTypeTable.from_pairs([(name, name) for name in REFERENCE_MIXTURE])


def test_reference_mixture_has_214_types(reference):
    assert reference.num_types == 214
    assert reference.offsets.tolist() == [0, 17, 31, 47, 64, 81, 214]
    assert reference.num_datasets == 6


def test_global_ids_are_contiguous_blocks(reference):
    np.testing.assert_array_equal(reference.global_ids("aic"), np.arange(17, 31))
    np.testing.assert_array_equal(reference.global_ids("coco_wholebody"), np.arange(81, 214))
    assert reference.offset("mpii") == 31 and reference.num_keypoints("mpii") == 16
    owner = reference.dataset_of_type()
    assert owner.shape == (214,)
    np.testing.assert_array_equal(np.bincount(owner), [17, 14, 16, 17, 17, 133])
    # every global id belongs to exactly the block that global_ids reports
    for index, dataset in enumerate(REFERENCE_MIXTURE):
        assert np.all(owner[reference.global_ids(dataset)] == index)


def test_type_names_follow_the_blocks(reference):
    names = reference.type_names()
    assert len(names) == 214
    assert names[0] == "coco/nose"
    assert names[17] == "aic/right_shoulder"
    assert names[31 + 9] == "mpii/head_top"
    assert names[47] == "ap10k/left_eye"
    assert names[64] == "apt36k/left_eye"
    assert names[81] == "coco_wholebody/nose"
    assert names[213] == "coco_wholebody/right_pinky_finger4"


def test_two_datasets_may_share_a_skeleton():
    table = KeypointTypeTable.from_pairs([("coco", "coco"), ("crowd_coco", "coco")])
    assert table.offsets.tolist() == [0, 17, 34]
    assert table.skeleton("crowd_coco") is table.skeleton("coco")


def test_duplicated_dataset_name_is_an_error():
    with pytest.raises(PosebhError, match="'coco' appears twice"):
        KeypointTypeTable.from_pairs([("coco", "coco"), ("aic", "aic"), ("coco", "coco")])


def test_unknown_dataset_and_skeleton_are_errors(reference):
    with pytest.raises(PosebhError, match="did you mean 'mpii'"):
        reference.offset("mpi")
    with pytest.raises(PosebhError, match="unknown skeleton 'coco_whole'"):
        KeypointTypeTable.from_pairs([("wb", "coco_whole")])


def test_to_dict(reference):
    assert reference.to_dict() == {
        "datasets": REFERENCE_MIXTURE,
        "skeletons": REFERENCE_MIXTURE,
        "offsets": [0, 17, 31, 47, 64, 81, 214],
        "num_types": 214,
    }
