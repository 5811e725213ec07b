from __future__ import annotations

import numpy as np
import pytest
import torch

from posebh_cli.codecs import decode, heatmap_to_image
from posebh_cli.data.augment import AugmentConfig
from posebh_cli.data.transforms import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    TopDownConfig,
    TopDownTransform,
    normalize_images,
)

FLIP_INDEX = np.array([0, 2, 1, 4, 3])
COLOURS_BGR = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def _scene():
    """A 480x640 image with five 5x5 coloured squares at the keypoints (BGR)."""
    image = np.full((480, 640, 3), 40, np.uint8)
    kps = np.array([[300.0, 150.0], [270.0, 200.0], [340.0, 210.0], [250.0, 330.0], [350.0, 320.0]])
    for (x, y), colour in zip(kps.astype(int), COLOURS_BGR, strict=True):
        image[y - 2 : y + 3, x - 2 : x + 3] = colour
    keypoints = np.concatenate([kps, np.full((5, 1), 2.0)], axis=1)
    return image, np.array([230.0, 130.0, 140.0, 220.0]), keypoints


@pytest.mark.parametrize("encoding", ["udp", "msra"])
def test_eval_crop_round_trips_to_image_coordinates(encoding):
    image, box, kps = _scene()
    transform = TopDownTransform(TopDownConfig(encoding=encoding))
    sample = transform(image, box, kps, train=False)
    assert sample["image"].shape == (3, 256, 192) and sample["image"].dtype == torch.uint8
    assert sample["heatmaps"].shape == (5, 64, 48) and sample["weights"].tolist() == [1.0] * 5
    assert not sample["flipped"] and sample["rotation"] == 0.0
    method = "dark_udp" if encoding == "udp" else "shift"
    coords, _ = decode(sample["heatmaps"][None], method)
    back = heatmap_to_image(
        coords,
        sample["center"][None],
        sample["scale"][None],
        (64, 48),
        (256, 192),
        udp=encoding == "udp",
    )[0].numpy()
    # MSRA rounds to the heatmap grid: up to half a heatmap pixel (275 / 64 image px here).
    tolerance = 0.2 if encoding == "udp" else 0.5 * 275 / 64
    assert np.abs(back - kps[:, :2]).max() < tolerance


def test_crop_is_rgb_and_keypoints_land_on_their_colours_under_augmentation():
    image, box, kps = _scene()
    aug = AugmentConfig(flip_prob=0.5, rotation_prob=1.0, half_body_prob=0.0)
    transform = TopDownTransform(TopDownConfig(augment=aug))
    seen_flip = set()
    for seed in range(12):
        sample = transform(
            image, box, kps, FLIP_INDEX, None, np.random.default_rng(seed), train=True
        )
        seen_flip.add(sample["flipped"])
        crop = sample["image"].numpy()
        for k, (x, y, v) in enumerate(sample["keypoints"].numpy()):
            assert v == 1.0
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < 192 and 0 <= yi < 256):
                continue
            # Keypoint k of the sample is the source keypoint FLIP_INDEX[k] when flipped.
            src = FLIP_INDEX[k] if sample["flipped"] else k
            b, g, r = COLOURS_BGR[src]
            assert crop[:, yi, xi].tolist() == [r, g, b]
    assert seen_flip == {True, False}


def test_bgra_input_gives_the_same_sample_as_bgr():
    image, box, kps = _scene()
    bgra = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
    transform = TopDownTransform()
    a = transform(image, box, kps, FLIP_INDEX, None, np.random.default_rng(3))
    b = transform(bgra, box, kps, FLIP_INDEX, None, np.random.default_rng(3))
    assert a["image"].shape == b["image"].shape == (3, 256, 192)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["heatmaps"], b["heatmaps"])


def test_same_seed_same_sample_and_different_seed_differs():
    image, box, kps = _scene()
    transform = TopDownTransform()
    a = transform(image, box, kps, FLIP_INDEX, np.arange(3), np.random.default_rng(7))
    b = transform(image, box, kps, FLIP_INDEX, np.arange(3), np.random.default_rng(7))
    c = transform(image, box, kps, FLIP_INDEX, np.arange(3), np.random.default_rng(8))
    for key in ("image", "heatmaps", "weights", "center", "scale"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["image"], c["image"])


def test_half_body_triggers_with_enough_joints():
    image, box, _ = _scene()
    kps = np.zeros((10, 3))
    kps[:, :2] = np.linspace([260, 140], [340, 340], 10)
    kps[:, 2] = 2
    cfg = TopDownConfig(
        augment=AugmentConfig(half_body_prob=1.0, scale_sigma=0.0, rotation_prob=0.0, flip_prob=0.0)
    )
    sample = TopDownTransform(cfg)(image, box, kps, None, np.arange(5), np.random.default_rng(0))
    # Half of the joints span 80 px vertically -> crop height 80 * 1.5 = 120, not the box's 275.
    assert (
        float(sample["scale"][1]) == pytest.approx(80 * 1.5 * 4 / 9, rel=1e-5)
        or float(sample["scale"][1]) < 200
    )
    kps[:3, 2] = 0  # 7 visible joints < 8: never half-body
    sample = TopDownTransform(cfg)(image, box, kps, None, np.arange(5), np.random.default_rng(0))
    assert float(sample["scale"][1]) == pytest.approx(220 * 1.25)


def test_normalize_images_matches_imagenet_formula():
    images = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    out = normalize_images(images)
    mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (images.float() / 255 - mean) / std)
    sample = TopDownTransform(TopDownConfig(normalize_in_worker=True))(*_scene(), train=False)
    assert sample["image"].dtype == torch.float32


def test_training_without_generator_is_an_error():
    with pytest.raises(ValueError, match="Generator"):
        TopDownTransform()(*_scene(), train=True)
