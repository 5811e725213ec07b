"""User-written skeleton specs: every mistake is a PosebhError naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.errors import PosebhError
from posebh_cli.skeletons.registry import (
    SKELETON_DIR_ENV,
    add_skeleton_dirs,
    all_skeletons,
    get_skeleton,
    load_skeleton_file,
    skeletons_of_family,
)

# A valid 4-keypoint spec: nose, neck and one mirrored pair.
VALID = {
    "name": "tiny",
    "family": "human",
    "keypoints": ["nose", "neck", "left_hand", "right_hand"],
    "flip_pairs": [[2, 3]],
    "links": [[0, 1], [1, 2], [1, 3]],
    "sigmas": [0.026, 0.035, 0.062, 0.062],
    "upper_body": [0, 1],
}


def _toml(table: dict) -> str:
    # JSON scalars and arrays of numbers/strings/arrays are valid TOML values.
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())


def _write(folder: Path, table: dict, filename: str = "tiny.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(_toml(table), encoding="utf-8")
    return path


def _expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(PosebhError) as caught:
        load_skeleton_file(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_valid_spec_loads(tmp_path):
    skeleton = load_skeleton_file(_write(tmp_path, VALID))
    assert skeleton.name == "tiny" and skeleton.num_keypoints == 4
    np.testing.assert_array_equal(skeleton.flip_index, [0, 1, 3, 2])
    assert skeleton.lower_body == (2, 3)
    # colours default to the side: centre blue, left green, right orange
    np.testing.assert_array_equal(
        skeleton.keypoint_colors, [[51, 153, 255], [51, 153, 255], [0, 255, 0], [255, 128, 0]])


def test_asymmetric_flip_pairs(tmp_path):
    path = _write(tmp_path, {**VALID, "flip_pairs": [[2, 3], [3, 0]]})
    _expect_error(path, "flip_pairs[1]", "right_hand", "symmetric")


def test_flip_pair_out_of_range(tmp_path):
    path = _write(tmp_path, {**VALID, "flip_pairs": [[2, 4]]})
    _expect_error(path, "flip_pairs[0]", "out of range", "0..3")


def test_flip_pair_joining_a_keypoint_to_itself(tmp_path):
    _expect_error(_write(tmp_path, {**VALID, "flip_pairs": [[1, 1]]}), "flip_pairs[0]", "itself")


def test_wrong_sigma_count(tmp_path):
    path = _write(tmp_path, {**VALID, "sigmas": [0.026, 0.035, 0.062]})
    _expect_error(path, "'sigmas'", "expected 4 sigmas", "got 3")


@pytest.mark.parametrize("bad", [0.0, -0.01])
def test_non_positive_sigma(tmp_path, bad):
    path = _write(tmp_path, {**VALID, "sigmas": [0.026, bad, 0.062, 0.062]})
    _expect_error(path, "'sigmas'", "> 0")


def test_duplicate_keypoint_names(tmp_path):
    path = _write(tmp_path, {**VALID, "keypoints": ["nose", "neck", "nose", "right_hand"],
                             "flip_pairs": []})
    _expect_error(path, "'keypoints'", "'nose'")


def test_link_out_of_range(tmp_path):
    path = _write(tmp_path, {**VALID, "links": [[0, 1], [1, 7]]})
    _expect_error(path, "links[1]", "out of range")


def test_link_that_is_not_a_pair(tmp_path):
    _expect_error(_write(tmp_path, {**VALID, "links": [[0, 1, 2]]}), "links[0]", "pair")


def test_unknown_key(tmp_path):
    path = _write(tmp_path, {**VALID, "colours": [[0, 0, 0]] * 4})
    _expect_error(path, "'colours'", "unknown key")


@pytest.mark.parametrize("key", ["name", "family", "keypoints", "flip_pairs", "links", "sigmas"])
def test_missing_key(tmp_path, key):
    table = {k: v for k, v in VALID.items() if k != key}
    _expect_error(_write(tmp_path, table), f"'{key}'", "missing")


def test_bad_family(tmp_path):
    path = _write(tmp_path, {**VALID, "family": "robot"})
    _expect_error(path, "'family'", "'robot'", "human, animal, hand, wholebody")


def test_upper_body_out_of_range(tmp_path):
    _expect_error(_write(tmp_path, {**VALID, "upper_body": [0, 4]}), "'upper_body'", "0..3")


def test_bad_keypoint_colors(tmp_path):
    path = _write(tmp_path, {**VALID, "keypoint_colors": [[0, 0, 300]] * 4})
    _expect_error(path, "'keypoint_colors'", "0..255")


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "tiny"\nkeypoints = ["nose", \n', encoding="utf-8")
    _expect_error(path, "not valid TOML")


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "absent.toml", "not found")


def test_user_folder_via_add_skeleton_dirs(tmp_path):
    _write(tmp_path / "mine", {**VALID, "aliases": ["tiny_person"]})
    assert "tiny" not in all_skeletons()
    add_skeleton_dirs([tmp_path / "mine"])
    skeleton = get_skeleton("tiny")
    assert skeleton.source == str(tmp_path / "mine" / "tiny.toml")
    assert get_skeleton("tiny_person") is skeleton
    assert "tiny" in [s.name for s in skeletons_of_family("human")]
    assert get_skeleton("coco").num_keypoints == 17  # built-ins stay available


def test_user_folder_via_environment(tmp_path, monkeypatch):
    _write(tmp_path / "env", {**VALID, "name": "env_tiny", "family": "animal"})
    monkeypatch.setenv(SKELETON_DIR_ENV, str(tmp_path / "env"))
    assert get_skeleton("env_tiny").family == "animal"
    assert "env_tiny" in [s.name for s in skeletons_of_family("animal")]


def test_add_skeleton_dirs_rejects_a_non_folder(tmp_path):
    with pytest.raises(PosebhError, match="not a folder"):
        add_skeleton_dirs([tmp_path / "nowhere"])


def test_environment_folder_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(SKELETON_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(PosebhError, match=SKELETON_DIR_ENV):
        all_skeletons()


def test_name_clash_with_builtin(tmp_path):
    path = _write(tmp_path / "clash", {**VALID, "name": "coco"}, "my_coco.toml")
    add_skeleton_dirs([tmp_path / "clash"])
    with pytest.raises(PosebhError) as caught:
        all_skeletons()
    message = str(caught.value)
    assert str(path) in message and "'coco'" in message and "coco.toml" in message


def test_bad_user_file_is_reported_when_the_registry_loads(tmp_path):
    path = _write(tmp_path / "bad", {**VALID, "sigmas": [0.1]})
    add_skeleton_dirs([tmp_path / "bad"])
    with pytest.raises(PosebhError) as caught:
        get_skeleton("coco")
    assert str(path) in str(caught.value) and "sigmas" in str(caught.value)


def test_unknown_skeleton_name_suggests_a_close_match():
    with pytest.raises(PosebhError) as caught:
        get_skeleton("ap10")
    message = str(caught.value)
    assert "unknown skeleton 'ap10'" in message
    assert "did you mean 'ap10k'?" in message
    assert "coco_wholebody" in message  # the valid names are listed


def test_unknown_family_is_an_error():
    with pytest.raises(PosebhError, match="did you mean 'animal'"):
        skeletons_of_family("animals")
