from __future__ import annotations

import math

import pytest
import torch

from posebh_cli.losses.prototype import (
    PHM_WEIGHT,
    ppc_ppd_sums,
    prototype_heatmap_loss,
    prototype_loss,
)
from posebh_cli.models.prototype_learning import DatasetPixels, PixelTargets, learn_prototypes
from posebh_cli.models.prototypes import PrototypeTable


def _targets(similarity: torch.Tensor, offset: int, heat_k: int):
    """Targets for a 1-pixel sample labelled keypoint heat_k of a dataset starting at offset."""
    _, k, _, height, width = similarity.shape
    heatmaps = torch.zeros(1, k, height, width)
    heatmaps[0, heat_k, 0, 0] = 1.0
    table = torch.nn.functional.normalize(torch.randn(offset + k, similarity.shape[2], 3), dim=-1)
    embeddings = torch.randn(1, 3, height, width)
    group = DatasetPixels(offset, similarity, embeddings, heatmaps, torch.ones(1, k))
    return learn_prototypes(table, [group], update=False, sinkhorn_pixels="labelled",
                            seed=0).targets[0]


def test_ppc_on_one_pixel_is_minus_log_softmax_of_known_logits() -> None:
    # Dataset with K_d = 2, M = 2; the pixel is keypoint 1 and prototype (1, 1) is closest.
    logits = torch.tensor([0.1, 0.2, 0.3, 0.9])  # order (k, m): (0,0) (0,1) (1,0) (1,1)
    similarity = logits.reshape(1, 2, 2, 1, 1)
    learned = _targets(similarity, offset=5, heat_k=1)  # second dataset: global types 5, 6
    assert learned.global_type.item() == 6 and learned.local_type.item() == 1
    # M * y + m* indexes the dataset's OWN block of K_d * M logits (rows 2, 3 = its keypoint 1)
    assert learned.target_index(2).item() in (2, 3)
    # One pixel alone in its segment gets a uniform Sinkhorn q; fix m* = 1 to test the loss.
    targets = PixelTargets(
        learned.labelled, learned.correct, learned.assigned, learned.local_type,
        learned.global_type, torch.ones_like(learned.prototype), learned.confidence,
    )
    assert targets.target_index(2).item() == 3
    ce, distance, count = ppc_ppd_sums(similarity, targets)
    expected = -torch.log_softmax(logits, 0)[3].item()
    assert ce.item() == pytest.approx(expected, rel=1e-6)
    assert distance.item() == pytest.approx((1 - 0.9) ** 2, rel=1e-5)
    assert count.item() == 1
    loss = prototype_loss([similarity], [targets])
    assert loss.total.item() == pytest.approx(
        1.25e-5 * (0.01 * expected + 0.001 * 0.01), rel=1e-5
    )


def test_prototype_loss_is_zero_without_assigned_pixels_and_has_gradient() -> None:
    embeddings = torch.randn(1, 4, 2, 2, requires_grad=True)
    table = PrototypeTable(3, 2, 4)
    similarity = table.similarity(embeddings, torch.tensor([1, 2]))
    targets = _targets(similarity.detach(), 1, 0)
    loss = prototype_loss([similarity], [targets])
    loss.total.backward()
    assert embeddings.grad is not None
    targets.assigned[:] = False
    assert prototype_loss([similarity], [targets]).total.item() == 0.0


def test_prototype_heatmap_loss_weight() -> None:
    phm = torch.full((1, 1, 2, 2), 0.5)
    loss = prototype_heatmap_loss(phm, torch.zeros_like(phm), torch.ones(1, 1))
    assert loss.item() == pytest.approx(PHM_WEIGHT * 0.25)
    assert math.isclose(PHM_WEIGHT, 3.33e-6)
