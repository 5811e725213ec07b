from __future__ import annotations

import numpy as np
import torch

from posebh_cli.codecs import decode, encode, flip_back, heatmap_stride

INPUT = (256, 192)
HEATMAP = (64, 48)
FLIP_INDEX = np.array([0, 2, 1, 4, 3])


def test_flip_twice_is_identity_without_shift():
    hm = torch.rand(2, 5, 64, 48)
    torch.testing.assert_close(flip_back(flip_back(hm, FLIP_INDEX, False), FLIP_INDEX, False), hm)


def test_channels_swap_and_mirror():
    hm = torch.zeros(1, 5, 4, 6)
    hm[0, 1, 2, 0] = 1.0  # keypoint 1 at x = 0 on the flipped crop
    out = flip_back(hm, FLIP_INDEX, shift=False)
    assert out[0, 2, 2, 5] == 1.0 and out.sum() == 1.0  # becomes keypoint 2 at x = w - 1
    shifted = flip_back(hm, FLIP_INDEX, shift=True)
    assert shifted.sum() == 0.0  # the one-pixel shift pushes a last-column peak off the map
    hm2 = torch.zeros(1, 5, 4, 6)
    hm2[0, 1, 2, 3] = 1.0
    assert flip_back(hm2, FLIP_INDEX, shift=True)[0, 2, 2, 3] == 1.0  # 6-1-3 = 2, then +1


def test_udp_flip_back_is_exact_on_encoded_targets():
    rng = np.random.default_rng(1)
    kps = rng.uniform([10, 10], [180, 245], size=(5, 2))
    mirrored = kps.copy()
    mirrored[:, 0] = INPUT[1] - 1 - mirrored[:, 0]  # image flip x -> W - 1 - x
    mirrored = mirrored[FLIP_INDEX]
    hm, _ = encode(kps, np.ones(5), INPUT, HEATMAP, 2.0, "udp")
    hm_flipped, _ = encode(mirrored, np.ones(5), INPUT, HEATMAP, 2.0, "udp")
    back = flip_back(torch.from_numpy(hm_flipped)[None], FLIP_INDEX, shift=False)
    torch.testing.assert_close(back[0], torch.from_numpy(hm), atol=1e-5, rtol=0)


def test_msra_flip_back_with_shift_is_within_quarter_pixel():
    # MSRA: mirrored targets sit (1 - 1/stride) = 0.75 px left; the one-pixel shift leaves +0.25.
    stride = heatmap_stride(INPUT, HEATMAP, "msra")
    kps = np.array([[20.0, 30.0], [10.0, 12.0], [30.0, 12.0], [15.0, 40.0], [33.0, 40.0]]) * stride
    mirrored = kps.copy()
    mirrored[:, 0] = INPUT[1] - 1 - mirrored[:, 0]
    hm_flipped, _ = encode(mirrored[FLIP_INDEX], np.ones(5), INPUT, HEATMAP, 2.0, "msra")
    back = flip_back(torch.from_numpy(hm_flipped)[None], FLIP_INDEX, shift=True)
    coords, _ = decode(back, "udp")
    err = coords[0].numpy() - kps / stride
    assert np.abs(err[:, 1]).max() == 0
    assert np.abs(err[:, 0]).max() <= 0.25 + 1e-9
