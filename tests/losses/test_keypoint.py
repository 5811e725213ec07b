from __future__ import annotations

import math

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.losses.keypoint import (
    get_keypoint_loss,
    multi_head_keypoint_loss,
    softmax_heatmap_ce,
    weighted_mse,
)


def test_weighted_mse_on_2x2_by_hand() -> None:
    pred = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]]])  # (1, 2, 2, 2)
    target = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    # keypoint 0: squared errors 1, 0, 0, 1 with w = 0.5 -> 0.25 * 2 = 0.5
    # keypoint 1: w = 0 -> 0.   mean over 8 elements: 0.5 / 8
    loss = weighted_mse(pred, target, torch.tensor([[0.5, 0.0]]))
    assert loss.item() == pytest.approx(0.5 / 8)


def test_softmax_ce_known_value() -> None:
    logits = torch.log(torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]]))  # softmax = these values
    target = torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]])  # distribution 0.5 at px 1 and 3
    loss = softmax_heatmap_ce(logits, target, torch.tensor([[2.0]]))
    expected = 2.0 * -(0.5 * math.log(0.2) + 0.5 * math.log(0.4))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    zero = softmax_heatmap_ce(logits, torch.zeros_like(target), torch.tensor([[1.0]]))
    assert zero.item() == 0.0


def test_each_head_is_averaged_over_its_own_samples() -> None:
    targets = torch.zeros(3, 3, 2, 2)
    weights = torch.ones(3, 3)
    heatmaps = {"a": torch.ones(2, 3, 2, 2), "b": torch.zeros(1, 2, 2, 2)}
    indices = {"a": torch.tensor([0, 2]), "b": torch.tensor([1])}
    total, parts = multi_head_keypoint_loss(heatmaps, indices, targets, weights)
    assert parts["a"].item() == 1.0  # not 2/3: averaged over dataset a's 2 samples (§8.6)
    assert parts["b"].item() == 0.0
    assert total.item() == 1.0
    with pytest.raises(PosebhError, match="unknown keypoint loss"):
        get_keypoint_loss("l1")


def test_head_weights_scale_each_heads_term_of_the_total() -> None:
    targets, weights = torch.zeros(3, 3, 2, 2), torch.ones(3, 3)
    heatmaps = {"a": torch.ones(2, 3, 2, 2), "b": torch.full((1, 2, 2, 2), 0.5)}
    indices = {"a": torch.tensor([0, 2]), "b": torch.tensor([1])}
    total, parts = multi_head_keypoint_loss(heatmaps, indices, targets, weights,
                                            head_weights={"a": 2.0, "b": 0.5})
    assert parts["a"].item() == 1.0 and parts["b"].item() == 0.25  # logged unweighted
    assert total.item() == 2.0 * 1.0 + 0.5 * 0.25
    total, _ = multi_head_keypoint_loss(heatmaps, indices, targets, weights,
                                        head_weights={"b": 4.0})  # a head not named: weight 1
    assert total.item() == 1.0 + 4.0 * 0.25
