"""MoEMlp selects each sample's expert by a one-hot product, or by row slices of a batch sorted
by dataset: both give the values and gradients of indexing the expert table, and no gradient for
the experts of absent datasets."""

from __future__ import annotations

import pytest
import torch

from posebh_cli.models.moe import MoEMlp
from posebh_cli.models.posebh import contiguous_group_sizes, group_samples_by_dataset


def _indexing_oracle(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """The plain definition: concat(shared fc2, Linear of the sample's own expert), per sample."""
    hidden = mlp.act(mlp.fc1(x))
    rows = []
    for i, d in enumerate(dataset_idx.tolist()):
        expert = torch.nn.functional.linear(hidden[i], mlp.expert_weight[d], mlp.expert_bias[d])
        rows.append(torch.cat([mlp.fc2(hidden[i]), expert], dim=-1))
    return torch.stack(rows)


@pytest.mark.parametrize("order, sorted_batch, absent", [
    ([2, 0, 2, 1, 0], False, 3),  # any order: one-hot selection
    ([0, 0, 1, 3, 3, 3], True, 2),  # sorted by dataset, run lengths given: row slices
])
def test_routing_matches_per_sample_experts_in_values_and_gradients(order, sorted_batch,
                                                                    absent) -> None:
    torch.manual_seed(0)
    mlp = MoEMlp(16, 64, num_experts=4, expert_dim=6)
    with torch.no_grad():
        mlp.expert_bias.normal_()
    dataset_idx = torch.tensor(order)
    x, grad = torch.randn(len(order), 7, 16), torch.randn(len(order), 7, 16)
    sizes = contiguous_group_sizes(group_samples_by_dataset(dataset_idx, 4))
    assert (sizes is not None) == sorted_batch
    if sorted_batch:
        assert sizes == (2, 1, 0, 3)

    out = mlp(x, dataset_idx, sizes)
    out.backward(grad)
    got = {name: p.grad.clone() for name, p in mlp.named_parameters()}
    mlp.zero_grad()
    expected = _indexing_oracle(mlp, x, dataset_idx)
    expected.backward(grad)

    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    for name, param in mlp.named_parameters():
        torch.testing.assert_close(got[name], param.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert got["expert_weight"][absent].abs().max() == 0
    assert got["expert_bias"][absent].abs().max() == 0
    assert got["expert_weight"][1].abs().max() > 0


def test_contiguous_group_sizes_only_for_a_batch_sorted_by_dataset() -> None:
    def sizes(order):
        return contiguous_group_sizes(group_samples_by_dataset(torch.tensor(order), 3))

    assert sizes([0, 0, 1, 2]) == (2, 1, 1)
    assert sizes([1, 1, 2]) == (0, 2, 1)
    assert sizes([0, 1, 0]) is None
    assert sizes([2, 0, 1]) is None


def test_row_slices_reject_sizes_that_do_not_cover_the_batch() -> None:
    mlp = MoEMlp(8, 16, num_experts=2, expert_dim=2)
    x, dataset_idx = torch.randn(3, 4, 8), torch.tensor([0, 1, 1])
    for bad in [(1, 1), (1, 1, 1), (4, -1)]:
        with pytest.raises(ValueError, match="group_sizes"):
            mlp(x, dataset_idx, bad)
