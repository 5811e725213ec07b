"""The built-in skeleton specs: counts, symmetry, ranges and known values (METHOD.md §5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posebh_cli.skeletons.registry import (
    BUILTIN_DIR,
    get_skeleton,
    load_skeleton_file,
    reset_registry,
    skeleton_names,
)
from posebh_cli.skeletons.skeleton import Skeleton, skeleton_from_table

# tests/skeletons/<file> -> repo root is parents[2]; the sample data sits beside the repo.
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

EXPECTED = {
    "coco": (17, "human"),
    "aic": (14, "human"),
    "mpii": (16, "human"),
    "ap10k": (17, "animal"),
    "apt36k": (17, "animal"),
    "coco_wholebody": (133, "wholebody"),
    "interhand": (42, "hand"),
    "onehand10k": (21, "hand"),
}


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch):
    monkeypatch.delenv("POSEBH_SKELETON_DIR", raising=False)
    reset_registry()
    yield
    reset_registry()


def _mirror_name(name: str) -> str:
    if "left" in name:
        return name.replace("left", "right")
    return name.replace("right", "left")


def _sample_json(relative: str) -> dict:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"sample data {path} not present")
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_builtin_file_loads_and_is_registered():
    files = sorted(BUILTIN_DIR.glob("*.toml"))
    loaded = {load_skeleton_file(path).name for path in files}
    assert set(EXPECTED) <= loaded
    assert set(EXPECTED) <= set(skeleton_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_and_family(name):
    skeleton = get_skeleton(name)
    count, family = EXPECTED[name]
    assert skeleton.num_keypoints == count
    assert skeleton.family == family
    assert skeleton.sigmas.shape == (count,)
    assert np.all(skeleton.sigmas > 0)
    assert skeleton.keypoint_colors.shape == (count, 3)
    assert skeleton.link_colors.shape == (len(skeleton.links), 3)
    assert Path(skeleton.source).parent == BUILTIN_DIR


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flip_index_is_an_involution_that_swaps_sides(name):
    skeleton = get_skeleton(name)
    flip = skeleton.flip_index
    np.testing.assert_array_equal(flip[flip], np.arange(skeleton.num_keypoints))
    names = skeleton.keypoints
    for i, j in enumerate(flip):
        if "left" in names[i] or "right" in names[i]:
            # every sided keypoint has a mirror, and the mirror is the same joint on the other side
            assert names[j] == _mirror_name(names[i]), (name, names[i], names[j])
        elif not names[i].startswith("face-"):
            assert j == i, (name, names[i])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_links_are_in_range_unique_and_connected(name):
    skeleton = get_skeleton(name)
    links = skeleton.links
    assert all(0 <= a < skeleton.num_keypoints and 0 <= b < skeleton.num_keypoints
               for a, b in links)
    assert len({frozenset(link) for link in links}) == len(links)
    linked = {v for link in links for v in link}
    # The linked joints form one piece per body (each hand of InterHand is its own piece).
    parent = {v: v for v in linked}

    def root(v: int) -> int:
        while parent[v] != v:
            v = parent[v]
        return v

    for a, b in links:
        parent[root(a)] = root(b)
    pieces = len({root(v) for v in linked})
    assert pieces == (2 if name == "interhand" else 1)
    if name == "coco_wholebody":
        # the face points and the two hand roots are drawn as points only
        unlinked = set(range(133)) - linked
        assert unlinked == set(range(23, 91)) | {91, 112}
    else:
        assert linked == set(range(skeleton.num_keypoints))


def test_upper_body_choices():
    assert get_skeleton("aic").upper_body == (0, 1, 2, 3, 4, 5, 12, 13)
    mpii = get_skeleton("mpii")
    assert [mpii.keypoints[i] for i in mpii.lower_body] == [
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis"]
    for name in ("ap10k", "apt36k"):
        animal = get_skeleton(name)
        lower = {animal.keypoints[i] for i in animal.lower_body}
        assert lower == {"root_of_tail", "left_hip", "left_knee", "left_back_paw",
                         "right_hip", "right_knee", "right_back_paw"}
    for name in ("interhand", "onehand10k"):
        assert get_skeleton(name).upper_body == ()
    wholebody = get_skeleton("coco_wholebody")
    assert wholebody.lower_body == tuple(range(11, 23))


def test_apt36k_is_ap10k():
    ap10k, apt36k = get_skeleton("ap10k"), get_skeleton("apt36k")
    assert apt36k.keypoints == ap10k.keypoints
    np.testing.assert_array_equal(apt36k.sigmas, ap10k.sigmas)
    assert apt36k.flip_pairs == ap10k.flip_pairs
    assert apt36k.links == ap10k.links
    assert apt36k.upper_body == ap10k.upper_body


def test_known_sigmas():
    aic = get_skeleton("aic")
    assert aic.sigmas[0] == pytest.approx(0.01388152)
    assert aic.sigmas[aic.index("neck")] == pytest.approx(0.01236173)
    mpii = get_skeleton("mpii")
    assert mpii.sigmas[mpii.index("right_shoulder")] == pytest.approx(0.179)
    assert mpii.sigmas[mpii.index("pelvis")] == pytest.approx(0.026)
    np.testing.assert_allclose(
        get_skeleton("ap10k").sigmas,
        [.025, .025, .026, .035, .035, .079, .072, .062, .079, .072, .062,
         .107, .087, .089, .107, .087, .089])
    wholebody = get_skeleton("coco_wholebody")
    np.testing.assert_allclose(wholebody.sigmas[17:23], [.068, .066, .066, .092, .094, .094])
    # the jaw line from face-0 to the chin (face-8)
    np.testing.assert_allclose(wholebody.sigmas[23:32],
                               [.042, .043, .044, .043, .040, .035, .031, .025, .020])
    assert wholebody.sigmas[wholebody.index("face-47")] == pytest.approx(0.034)
    assert wholebody.sigmas[wholebody.index("face-67")] == pytest.approx(0.008)
    hand = [.029, .022, .035, .037, .047, .026, .025, .024, .035, .018, .024, .022, .026,
            .017, .021, .021, .032, .020, .019, .022, .031]
    np.testing.assert_allclose(wholebody.sigmas[91:112], hand)
    np.testing.assert_allclose(wholebody.sigmas[112:133], hand)
    np.testing.assert_allclose(get_skeleton("onehand10k").sigmas, hand)


def test_wholebody_body_block_is_coco():
    coco, wholebody = get_skeleton("coco"), get_skeleton("coco_wholebody")
    assert wholebody.keypoints[:17] == coco.keypoints
    np.testing.assert_array_equal(wholebody.sigmas[:17], coco.sigmas)
    assert tuple(p for p in wholebody.flip_pairs if max(p) < 17) == coco.flip_pairs
    assert wholebody.links[:19] == coco.links
    assert wholebody.upper_body[:11] == coco.upper_body


def test_wholebody_blocks_and_face_symmetry():
    wholebody = get_skeleton("coco_wholebody")
    names = wholebody.keypoints
    assert names[17:23] == ("left_big_toe", "left_small_toe", "left_heel",
                            "right_big_toe", "right_small_toe", "right_heel")
    assert names[23:91] == tuple(f"face-{i}" for i in range(68))
    assert names[91] == "left_hand_root" and names[112] == "right_hand_root"
    assert names[95] == "left_thumb4" and names[132] == "right_pinky_finger4"
    assert len(wholebody.flip_pairs) == 61 and len(wholebody.links) == 65
    flip = wholebody.flip_index
    face = {i: int(flip[23 + i]) - 23 for i in range(68)}
    # iBUG-68 mirror: jaw 0<->16, brows 17<->26, eye corners 36<->45 and 39<->42, mouth 48<->54
    assert (face[0], face[16], face[17], face[36], face[39], face[40], face[48], face[65]) == (
        16, 0, 26, 45, 42, 47, 54, 67)
    # points on the midline map to themselves: chin, nose bridge, nose tip, lip centres
    for centre in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert face[centre] == centre
    # the dataset's face sigmas are NOT mirror-symmetric (jaw ends 0.042 vs 0.045): kept as given
    assert wholebody.sigmas[23 + 0] == pytest.approx(0.042)
    assert wholebody.sigmas[23 + 16] == pytest.approx(0.045)


def test_interhand_order_flip_and_sigmas():
    interhand, wholebody = get_skeleton("interhand"), get_skeleton("coco_wholebody")
    assert interhand.keypoints[20] == "right_wrist" and interhand.keypoints[41] == "left_wrist"
    assert interhand.keypoints[0] == "right_thumb4" and interhand.keypoints[3] == "right_thumb1"
    assert interhand.flip_pairs == tuple((i, i + 21) for i in range(21))
    for i, name in enumerate(interhand.keypoints):
        # same joint in COCO-WholeBody's left hand (its wrist is the 'hand root')
        joint = name.split("_", 1)[1]
        wholebody_name = "left_hand_root" if joint == "wrist" else f"left_{joint}"
        assert interhand.sigmas[i] == wholebody.sigmas[wholebody.index(wholebody_name)], name
    assert interhand.sigmas[0] == pytest.approx(0.047)  # thumb tip
    # every finger chain starts at its own hand's wrist
    wrists = {a for a, _ in interhand.links if interhand.keypoints[a].endswith("wrist")}
    assert wrists == {20, 41}
    assert sum(1 for a, _ in interhand.links if a == 20) == 5


def test_onehand10k_matches_wholebody_hand():
    onehand, wholebody = get_skeleton("onehand10k"), get_skeleton("coco_wholebody")
    assert onehand.keypoints[0] == "wrist"
    assert onehand.flip_pairs == ()
    assert [f"left_{n}" for n in onehand.keypoints[1:]] == list(wholebody.keypoints[92:112])
    # the same chains as a COCO-WholeBody hand, with the wrist at 0
    offset_links = [(0 if a == 9 else a - 91, b - 91) for a, b in wholebody.links[25:45]]
    assert list(onehand.links) == offset_links


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_round_trip_through_to_dict(name):
    skeleton = get_skeleton(name)
    again = skeleton_from_table(skeleton.to_dict(), skeleton.source)
    assert isinstance(again, Skeleton)
    assert again.keypoints == skeleton.keypoints and again.links == skeleton.links
    assert again.flip_pairs == skeleton.flip_pairs
    np.testing.assert_array_equal(again.sigmas, skeleton.sigmas)
    np.testing.assert_array_equal(again.keypoint_colors, skeleton.keypoint_colors)


def test_ap10k_matches_sample_annotation():
    category = _sample_json("ap10k/test_ap10k.json")["categories"][0]
    ap10k = get_skeleton("ap10k")
    assert list(ap10k.keypoints) == category["keypoints"]
    assert [[a + 1, b + 1] for a, b in ap10k.links] == category["skeleton"]


def test_onehand10k_matches_sample_annotation():
    category = _sample_json("onehand10k/test_onehand10k.json")["categories"][0]
    onehand = get_skeleton("onehand10k")
    assert list(onehand.keypoints) == category["keypoints"]
    assert [[a + 1, b + 1] for a, b in onehand.links] == category["skeleton"]


def test_aic_matches_sample_annotation():
    category = _sample_json("aic/test_aic.json")["categories"][0]
    aic = get_skeleton("aic")
    readable = [n.lower().replace(" ", "_") for n in category["keypoints"]]
    assert list(aic.keypoints) == readable
    assert [[a + 1, b + 1] for a, b in aic.links] == category["skeleton"]


def test_wholebody_body_names_match_sample_annotation():
    category = _sample_json("coco/test_coco_wholebody.json")["categories"][0]
    assert list(get_skeleton("coco_wholebody").keypoints[:17]) == category["keypoints"]


def test_interhand_sample_has_42_joints():
    data = _sample_json("interhand2.6m/test_interhand2.6m_data.json")
    interhand = get_skeleton("interhand")
    for annotation in data["annotations"]:
        assert len(annotation["joint_valid"]) == interhand.num_keypoints
