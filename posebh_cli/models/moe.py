"""ViTPose++ mixture-of-experts FFN: a shared fc2 plus one expert slice per dataset (METHOD.md §1).

fc1 D -> 4D, GELU, then a shared fc2 4D -> D - P and one expert Linear(4D, P) per dataset; the
output is concat(shared, expert of the sample's dataset). Routing is by a `dataset_idx (B,)` tensor.

Routing choice (one-hot matmul + batched matmul): each sample's expert weights are selected as
one_hot(dataset_idx) (B, E) @ expert_weight (E, P*4D) -> (B, P, 4D) and applied with one
`baddbmm`. This costs the FLOPs of ONE expert per sample (computing all E experts and selecting
would cost E times the expert FLOPs: +37% FFN work for ViT-B with 6 datasets) and has no
data-dependent shapes (a per-dataset index_select loop needs host syncs and breaks torch.compile
graphs). Selecting by indexing (`expert_weight[dataset_idx]`) gives the same values, but its
backward is an accumulating index_put that serialises over the batch: on 2 CPU cores it took a
fifth of the tiny backbone's step; the one-hot product's backward is one small GEMM
(benchmarks/moe_routing.py). Multiplying by exact 0/1 keeps the selection exact.

Runs of rows (when the caller knows the batch is sorted by dataset): the training loader orders
each batch by dataset (collate_pose_batch), so dataset e's samples are one contiguous run of rows.
Given the run lengths (`group_sizes`, host ints, no sync), the whole FFN runs on each run with
that dataset's fc2 merged into one Linear(4D, D) (shared rows + expert e's rows, `merged_fc2`):
the same per-sample FLOPs, no (B, P, 4D) per-sample weight copy, and the (B, N, 4D) hidden
activation is never split, concatenated or summed from two gradients (the shared fc2 and the
experts' slices); only the (B, N, D) input and output are. Forward + backward of the tiny
recipe's FFN on 2 CPU cores: one-hot ~37 ms, expert slices after a shared fc2 ~33 ms, runs ~30 ms
(benchmarks/moe_routing.py; a whole training step did not move measurably).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def select_experts(weight: Tensor, bias: Tensor, dataset_idx: Tensor,
                   dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Each sample's expert: weight (E, P, 4D), bias (E, P), dataset_idx (B,) -> (B, P, 4D),
    (B, 1, P) in `dtype`, by an exact one-hot product (see the routing choice above)."""
    one_hot = nn.functional.one_hot(dataset_idx, weight.shape[0]).to(dtype)  # (B, E)
    selected = (one_hot @ weight.flatten(1).to(dtype)).view(len(dataset_idx), *weight.shape[1:])
    return selected, (one_hot @ bias.to(dtype)).unsqueeze(1)


def check_group_sizes(group_sizes: Sequence[int], num_experts: int, batch: int) -> list[int]:
    """group_sizes as ints: one non-negative count per expert, summing to the batch size."""
    sizes = [int(n) for n in group_sizes]
    if len(sizes) != num_experts or sum(sizes) != batch or min(sizes) < 0:
        raise ValueError(f"group_sizes {sizes} must be {num_experts} counts summing to the "
                         f"batch size {batch}")
    return sizes


class MoEMlp(nn.Module):
    """FFN with a shared output slice and per-dataset expert slices.

    Attributes:
        fc1: Linear(D, 4D). fc2: shared Linear(4D, D - P).
        expert_weight: (E, P, 4D) one Linear(4D, P) weight per dataset; expert_bias: (E, P).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] | None = None,
        bias: bool = True,
        drop: float = 0.0,
        *,
        num_experts: int,
        expert_dim: int,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        if not 0 < expert_dim < out_features:
            raise ValueError(f"expert_dim must be in (0, {out_features}), got {expert_dim}")
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        dd = {"device": device, "dtype": dtype}
        self.num_experts = num_experts
        self.expert_dim = expert_dim
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias, **dd)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = norm_layer(hidden_features) if norm_layer is not None else nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features - expert_dim, bias=bias, **dd)
        self.expert_weight = nn.Parameter(
            torch.empty(num_experts, expert_dim, hidden_features, **dd)
        )
        self.expert_bias = nn.Parameter(torch.zeros(num_experts, expert_dim, **dd))
        self.drop2 = nn.Dropout(drop)
        self.reset_expert_parameters()

    def reset_expert_parameters(self) -> None:
        # Same init as the timm/ViTPose Linear layers (trunc normal std 0.02, zero bias).
        nn.init.trunc_normal_(self.expert_weight, std=0.02)
        nn.init.zeros_(self.expert_bias)

    def forward(self, x: Tensor, dataset_idx: Tensor,
                group_sizes: Sequence[int] | None = None) -> Tensor:
        """x: (B, N, D); dataset_idx: (B,) int64 in [0, E). Returns (B, N, D).

        group_sizes: (E,) sample counts when the batch is sorted by dataset (rows of dataset 0
        first, ...; see models.posebh.contiguous_group_sizes): the FFN then runs on each
        dataset's run of rows with that dataset's merged fc2.
        """
        if group_sizes is not None:
            return self._forward_by_runs(x, group_sizes)
        hidden = self.hidden(x)  # (B, N, 4D)
        shared = self.fc2(hidden)  # (B, N, D - P)
        weight, bias = select_experts(self.expert_weight, self.expert_bias, dataset_idx,
                                      hidden.dtype)  # (B, P, 4D), (B, 1, P)
        expert = torch.baddbmm(bias, hidden, weight.transpose(1, 2))  # (B, N, P)
        out = torch.cat([shared, expert.to(shared.dtype)], dim=-1)
        return self.drop2(out)

    def hidden(self, x: Tensor) -> Tensor:
        """(..., D) -> (..., 4D): fc1, activation, dropout, optional norm."""
        return self.norm(self.drop1(self.act(self.fc1(x))))

    def _forward_by_runs(self, x: Tensor, group_sizes: Sequence[int]) -> Tensor:
        """x (B, N, D) sorted by dataset, group_sizes (E,) -> (B, N, D), each run of rows
        through the FFN with its dataset's merged fc2."""
        sizes = check_group_sizes(group_sizes, self.num_experts, x.shape[0])
        outputs = []
        for e, rows in enumerate(torch.split(x, sizes)):
            if sizes[e]:
                weight, bias = self.merged_fc2(e)
                outputs.append(nn.functional.linear(self.hidden(rows), weight, bias))
        out = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        return self.drop2(out)

    def merged_fc2(self, dataset_index: int) -> tuple[Tensor, Tensor]:
        """fc2 of a plain FFN equal to this one for `dataset_index`: weight (D, 4D), bias (D,)."""
        weight = torch.cat([self.fc2.weight, self.expert_weight[dataset_index]], dim=0)
        if self.fc2.bias is None:
            bias = torch.cat([self.fc2.weight.new_zeros(self.fc2.out_features),
                              self.expert_bias[dataset_index]])
        else:
            bias = torch.cat([self.fc2.bias, self.expert_bias[dataset_index]])
        return weight, bias

