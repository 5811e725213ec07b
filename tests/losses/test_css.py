from __future__ import annotations

import numpy as np
import pytest
import torch

from posebh_cli.codecs.encode import encode
from posebh_cli.losses.css import CssInput, css_loss, css_pseudo_labels, render_gaussian_heatmaps
from posebh_cli.models.prototypes import PrototypeTable

SIZE = (32, 24)


def _peak(x: float, y: float, confidence: float) -> torch.Tensor:
    return confidence * render_gaussian_heatmaps(torch.tensor([[[x, y]]]), SIZE, 2.0)


def test_torch_renderer_matches_the_udp_encoder() -> None:
    xy = np.array([[5.3, 7.8], [20.0, 30.4]])
    expected, _ = encode(xy, np.ones(2), SIZE, SIZE, sigma=2.0, method="udp")
    rendered = render_gaussian_heatmaps(torch.tensor(xy)[None], SIZE, 2.0)[0]
    np.testing.assert_allclose(rendered.numpy(), expected, atol=1e-6)


def test_pseudo_label_is_confidence_weighted_mean_with_min_weight() -> None:
    head = _peak(10.0, 12.0, 0.6)
    proto = _peak(11.0, 12.0, 0.3)  # 1 px apart
    labels = css_pseudo_labels(head, proto)
    assert labels.keep.tolist() == [[True]]
    expected_x = (0.6 * 10.0 + 0.3 * 11.0) / 0.9
    torch.testing.assert_close(labels.coords[0, 0], torch.tensor([expected_x, 12.0]),
                               atol=2e-3, rtol=0)
    assert labels.weights.item() == pytest.approx(0.3, abs=1e-4)
    peak = labels.heatmaps[0, 0].flatten().argmax().item()
    assert divmod(peak, SIZE[1]) == (12, round(expected_x))


@pytest.mark.parametrize("proto_xy,proto_conf", [((13.0, 12.0), 0.3), ((11.0, 12.0), 0.2)])
def test_far_or_unconfident_keypoints_are_dropped(proto_xy, proto_conf) -> None:
    labels = css_pseudo_labels(_peak(10.0, 12.0, 0.6), _peak(*proto_xy, proto_conf))
    assert labels.keep.tolist() == [[False]]
    assert labels.weights.item() == 0.0 and labels.heatmaps.abs().sum() == 0


def test_css_loss_scaled_and_differentiable() -> None:
    table = PrototypeTable(4, 2, 8)
    head = (_peak(10.0, 12.0, 0.9) + 0.01).requires_grad_(True)
    embeddings = torch.randn(1, 8, *SIZE, requires_grad=True)
    similarity = table.similarity(embeddings, torch.tensor([3]))
    with torch.no_grad():  # make the prototype heatmap agree with the head
        similarity_value = _peak(10.5, 12.0, 0.8)[:, :, None].expand_as(similarity).clone()
    similarity = similarity * 0 + similarity_value  # keeps the graph to the embeddings
    loss = css_loss([CssInput(3, head, similarity, embeddings)], table.prototypes, sinkhorn_seed=0)
    assert loss.pseudo_keypoints.item() == 1
    expected = 1e-3 * (loss.keypoint + loss.prototype_heatmap + loss.prototype)
    torch.testing.assert_close(loss.total, expected)
    loss.total.backward()
    assert head.grad is not None and head.grad.abs().sum() > 0


def test_css_thresholds_a_softmax_head_on_its_decoded_maps() -> None:
    # A softmax-CE head outputs logits (all negative here); the pseudo label must come from the
    # decoded maps (confidence 0.9), while the loss still sees the logits.
    table = PrototypeTable(4, 2, 8)
    decoded = _peak(10.0, 12.0, 0.9)
    logits = (decoded.clamp_min(1e-6).log() - 30.0).requires_grad_(True)
    embeddings = torch.randn(1, 8, *SIZE, requires_grad=True)
    similarity = table.similarity(embeddings, torch.tensor([3]))
    similarity = similarity * 0 + _peak(10.5, 12.0, 0.8)[:, :, None].expand_as(similarity)
    with_maps = css_loss([CssInput(3, logits, similarity, embeddings, decoded)],
                         table.prototypes, keypoint_loss="softmax_ce", sinkhorn_seed=0)
    assert with_maps.pseudo_keypoints.item() == 1
    raw = css_loss([CssInput(3, logits, similarity, embeddings)], table.prototypes,
                   keypoint_loss="softmax_ce", sinkhorn_seed=0)
    assert raw.pseudo_keypoints.item() == 0  # logits below the 0.25 threshold: nothing kept
    with_maps.total.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
