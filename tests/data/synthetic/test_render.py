"""Rendering: visibility from the id buffer, the view-tied left/right cue, occlusion statistics."""

from __future__ import annotations

import numpy as np
import pytest

from posebh_cli.data.synthetic import human
from posebh_cli.data.synthetic.concepts import concept_index
from posebh_cli.data.synthetic.figure import rotation, tilt
from posebh_cli.data.synthetic.render import (
    draw_instance,
    marker_id,
    project,
    render_image,
    visibility,
)


def _render_single(yaw: float, seed: int = 0):
    fig = human.sample_human(np.random.default_rng(seed))
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    ids = np.zeros((200, 200), dtype=np.int32)
    proj = project(fig, rotation(yaw, 0, 0), 120.0, np.array([100.0, 100.0]))
    draw_instance(image, ids, proj, 1, concept_index("coco"), np.random.default_rng(1))
    return proj, ids


@pytest.mark.parametrize("seed", range(5))
def test_face_shows_only_toward_the_camera(seed):
    # Yaw 0 faces the camera: the nose sits in front of the skull; yaw 180 hides it behind.
    # (The head may turn up to 50 degrees, so the nose stays on the facing side.)
    front, ids_front = _render_single(0.0, seed)
    back, ids_back = _render_single(180.0, seed)
    assert visibility(front, 1, ids_front)[human.NOSE] == 2
    assert visibility(back, 1, ids_back)[human.NOSE] == 1


@pytest.mark.parametrize("seed", range(5))
def test_near_side_is_the_one_facing_the_camera(seed):
    # Yaw +90 turns the figure's left side (+x) toward the camera (-z), yaw -90 its right.
    left_view, ids_left = _render_single(90.0, seed)
    right_view, ids_right = _render_single(-90.0, seed)
    assert left_view.depth[human.L_HIP] < left_view.depth[human.R_HIP]
    assert right_view.depth[human.R_HIP] < right_view.depth[human.L_HIP]
    # Hips sit on the torso; the near one is never hidden, the far one is behind the near leg.
    assert visibility(left_view, 1, ids_left)[human.L_HIP] == 2
    assert visibility(right_view, 1, ids_right)[human.R_HIP] == 2


def test_marker_overdrawn_by_anything_is_occluded():
    proj, ids = _render_single(0.0)
    vis = visibility(proj, 1, ids)
    k = int(np.flatnonzero(vis == 2)[0])
    x, y = np.round(proj.xy[k]).astype(int)
    assert ids[y, x] == marker_id(1, k)
    ids[y, x] = 12345  # e.g. an occluder painted over it
    assert visibility(proj, 1, ids)[k] == 1
    proj.xy[k] = (-5.0, 10.0)  # outside the image
    assert visibility(proj, 1, ids)[k] == 0


def test_tilt_rotates_in_the_plane_toward_the_target():
    v = tilt(np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]), 90.0)
    assert np.allclose(v, [1.0, 0.0, 0.0])
    v = tilt(np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]), 30.0)
    assert np.allclose(v, [np.sin(np.pi / 6), np.cos(np.pi / 6), 0.0])


@pytest.mark.parametrize("family", ["human", "animal", "hand"])
def test_occlusion_truncation_and_crowds_occur(family):
    visible = occluded = outside = 0
    counts = set()
    for i in range(40):
        image, instances = render_image(family, np.random.default_rng([7, i]))
        assert image.dtype == np.uint8 and image.ndim == 3
        counts.add(len(instances))
        for inst in instances:
            v = inst.keypoints[:, 2]
            visible += int((v == 2).sum())
            occluded += int((v == 1).sum())
            outside += int((v == 0).sum())
    total = visible + occluded + outside
    assert counts == {1, 2, 3}
    assert 0.5 < visible / total < 0.95  # mostly visible, like real data
    assert occluded / total > 0.05
    assert outside > 0


def test_render_is_deterministic_per_seed():
    a, inst_a = render_image("animal", np.random.default_rng(11))
    b, inst_b = render_image("animal", np.random.default_rng(11))
    assert np.array_equal(a, b)
    assert all(np.array_equal(x.keypoints, y.keypoints) for x, y in zip(inst_a, inst_b,
                                                                        strict=True))


def test_example_mosaic_shape():
    from posebh_cli.data.synthetic.preview import example_mosaic

    mosaic = example_mosaic(seed=0, per_row=2, tile=64)
    assert mosaic.shape == (3 * 64, 2 * 64, 3) and mosaic.dtype == np.uint8
    assert mosaic.std() > 10  # textured, not blank
