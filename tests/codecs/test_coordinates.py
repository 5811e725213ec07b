from __future__ import annotations

import numpy as np
import pytest
import torch

from posebh_cli.codecs import heatmap_stride, heatmap_to_image
from posebh_cli.data.affine import transform_points, warp_matrix

INPUT = (256, 192)
HEATMAP = (64, 48)


@pytest.mark.parametrize("udp", [True, False])
def test_heatmap_to_image_inverts_crop_and_stride(udp):
    rng = np.random.default_rng(5)
    b, k = 4, 7
    center = rng.uniform(100, 400, size=(b, 2))
    scale = rng.uniform(80, 300, size=(b, 1)) * np.array([[0.75, 1.0]])
    rotation = rng.uniform(-80, 80, size=b)
    points = rng.uniform(0, 500, size=(b, k, 2))
    stride = heatmap_stride(INPUT, HEATMAP, "udp" if udp else "msra")
    coords = np.stack(
        [
            transform_points(points[i], warp_matrix(center[i], scale[i], rotation[i], INPUT, udp))
            / stride
            for i in range(b)
        ]
    )
    back = heatmap_to_image(coords, center, scale, HEATMAP, INPUT, udp, rotation)
    assert isinstance(back, np.ndarray)
    np.testing.assert_allclose(back, points, atol=1e-6)
    back_t = heatmap_to_image(
        torch.from_numpy(coords).float(),
        torch.from_numpy(center),
        torch.from_numpy(scale),
        HEATMAP,
        INPUT,
        udp,
        torch.from_numpy(rotation),
    )
    assert back_t.dtype == torch.float32
    np.testing.assert_allclose(back_t.numpy(), points, atol=1e-3)


def test_known_answer_without_rotation():
    # UDP: heatmap x in [0, w-1] spans the crop [c - s/2, c + s/2] exactly.
    coords = torch.tensor([[[0.0, 0.0], [47.0, 63.0]]])
    out = heatmap_to_image(
        coords,
        torch.tensor([[100.0, 200.0]]),
        torch.tensor([[60.0, 80.0]]),
        HEATMAP,
        INPUT,
        udp=True,
    )
    torch.testing.assert_close(out, torch.tensor([[[70.0, 160.0], [130.0, 240.0]]]))
    # Standard: heatmap x = w would be the right crop edge; x = 0 is the left edge.
    out = heatmap_to_image(
        coords,
        torch.tensor([[100.0, 200.0]]),
        torch.tensor([[48.0, 64.0]]),
        HEATMAP,
        INPUT,
        udp=False,
    )
    torch.testing.assert_close(out, torch.tensor([[[76.0, 168.0], [123.0, 231.0]]]))
