"""MoEMlp selects each sample's expert by a one-hot product: same values and gradients as
indexing the expert table, and no gradient for the experts of absent datasets."""

from __future__ import annotations

import torch

from posebh_cli.models.moe import MoEMlp


def _indexing_oracle(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """The plain definition: concat(shared fc2, Linear of the sample's own expert), per sample."""
    hidden = mlp.act(mlp.fc1(x))
    rows = []
    for i, d in enumerate(dataset_idx.tolist()):
        expert = torch.nn.functional.linear(hidden[i], mlp.expert_weight[d], mlp.expert_bias[d])
        rows.append(torch.cat([mlp.fc2(hidden[i]), expert], dim=-1))
    return torch.stack(rows)


def test_one_hot_routing_matches_per_sample_experts_in_values_and_gradients() -> None:
    torch.manual_seed(0)
    mlp = MoEMlp(16, 64, num_experts=4, expert_dim=6)
    with torch.no_grad():
        mlp.expert_bias.normal_()
    x = torch.randn(5, 7, 16)
    dataset_idx = torch.tensor([2, 0, 2, 1, 0])  # expert 3 is absent
    grad = torch.randn(5, 7, 16)

    mlp(x, dataset_idx).backward(grad)
    got = {name: p.grad.clone() for name, p in mlp.named_parameters()}
    mlp.zero_grad()
    _indexing_oracle(mlp, x, dataset_idx).backward(grad)

    torch.testing.assert_close(mlp(x, dataset_idx), _indexing_oracle(mlp, x, dataset_idx),
                               atol=1e-6, rtol=1e-5)
    for name, param in mlp.named_parameters():
        torch.testing.assert_close(got[name], param.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert got["expert_weight"][3].abs().max() == 0 and got["expert_bias"][3].abs().max() == 0
    assert got["expert_weight"][1].abs().max() > 0
