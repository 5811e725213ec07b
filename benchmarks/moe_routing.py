"""Benchmark: how the ViTPose++ MoE FFN applies each sample's expert (posebh_cli/models/moe.py).

Routings, timed forward + backward through one whole MoE FFN (fc1, GELU, shared fc2 + expert)
in one process on the same inputs:
  index     expert_weight[dataset_idx] -> (B, P, 4D), then baddbmm. Its backward is an
            accumulating index_put into (E, P, 4D), which serialises over the batch
  one_hot   one_hot(dataset_idx) (B, E) @ expert_weight (E, P*4D), then the same baddbmm (what
            MoEMlp does for a batch in any order): the backward of the selection is one
            (E, B) @ (B, P*4D) GEMM
  slices    the batch sorted by dataset: the shared fc2 on the whole batch, then each expert as
            one Linear on its run of rows, outputs concatenated along the channels (an earlier
            build's sorted-batch path, kept here for comparison)
  runs      the batch sorted by dataset: the whole FFN on each run of rows with the dataset's
            merged fc2 (what MoEMlp does when given the run lengths); the (B, N, 4D) hidden
            activation is never split, concatenated or summed from two gradients
One-hot selection gives bitwise the outputs of indexing (exact 0/1 products); the others use
other GEMMs, and every routing sums the weight gradients in its own order, so they agree with
indexing to rounding (reported as the largest difference relative to the largest value, over
the output and the gradients of the input and every parameter). All routings see the same
batch, sorted by dataset.

Shapes: the tiny CPU recipe's layer (B 64, 48 tokens, D 192, P 48, 3 datasets) and a ViT-B
layer of the reference 6-dataset mixture (B 16 on CPU, 192 tokens, D 768, P 192). Median
milliseconds after warm-up.

    python benchmarks/moe_routing.py --threads 2 --out benchmarks/results/moe_routing_cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from report import emit

from posebh_cli.models.moe import MoEMlp

# name, batch, tokens, dim D, expert slice P, experts E
SHAPES = (
    ("tiny recipe layer", 64, 48, 192, 48, 3),
    ("ViT-B 6-dataset layer", 16, 192, 768, 192, 6),
)


def run_lengths(dataset_idx: torch.Tensor, experts: int) -> list[int]:
    return torch.bincount(dataset_idx, minlength=experts).tolist()


def route_index(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, N, D), each sample's expert selected by indexing."""
    hidden = mlp.hidden(x)
    expert = torch.baddbmm(mlp.expert_bias[dataset_idx].unsqueeze(1), hidden,
                           mlp.expert_weight[dataset_idx].transpose(1, 2))
    return torch.cat([mlp.fc2(hidden), expert], dim=-1)


def route_one_hot(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """Same result, MoEMlp on a batch in any order (moe.select_experts)."""
    return mlp(x, dataset_idx)


def route_slices(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """Same result for a sorted batch: shared fc2 on all rows, one expert Linear per run."""
    hidden = mlp.hidden(x)
    sizes = run_lengths(dataset_idx, mlp.num_experts)
    experts = [torch.nn.functional.linear(rows, mlp.expert_weight[e], mlp.expert_bias[e])
               for e, rows in enumerate(torch.split(hidden, sizes)) if sizes[e]]
    return torch.cat([mlp.fc2(hidden), torch.cat(experts)], dim=-1)


def route_runs(mlp: MoEMlp, x: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
    """Same result for a sorted batch, MoEMlp given the run lengths."""
    return mlp(x, dataset_idx, run_lengths(dataset_idx, mlp.num_experts))


ROUTINGS: dict[str, Callable] = {"index": route_index, "one_hot": route_one_hot,
                                 "slices": route_slices, "runs": route_runs}


def forward_backward(routing: Callable, mlp: MoEMlp, inputs: tuple,
                     grad: torch.Tensor) -> list[torch.Tensor]:
    """One forward + backward from zeroed gradients; returns [output, *parameter grads]."""
    mlp.zero_grad(set_to_none=True)
    inputs[0].grad = None
    out = routing(mlp, *inputs)
    out.backward(grad)
    return [out.detach(), inputs[0].grad.clone()] + [p.grad.clone() for p in mlp.parameters()]


def time_routings(mlp: MoEMlp, inputs: tuple, grad: torch.Tensor, warmup: int,
                  repeats: int) -> dict[str, float]:
    """Median milliseconds of forward + backward per routing, interleaved round by round so a
    loaded machine slows them alike."""
    times: dict[str, list[float]] = {key: [] for key in ROUTINGS}
    for i in range(warmup + repeats):
        for key, routing in ROUTINGS.items():
            mlp.zero_grad(set_to_none=True)
            inputs[0].grad = None
            start = time.perf_counter()
            routing(mlp, *inputs).backward(grad)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(t) for key, t in times.items()}


def max_rel_diff(got: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    return max(float((g - r).abs().max() / r.abs().max()) for g, r in zip(got, reference,
                                                                          strict=True))


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name, batch, tokens, dim, expert_dim, experts in SHAPES:
        torch.manual_seed(0)
        mlp = MoEMlp(dim, 4 * dim, num_experts=experts, expert_dim=expert_dim)
        with torch.no_grad():
            mlp.expert_bias.normal_()
        x = torch.randn(batch, tokens, dim).requires_grad_()  # as in a block: grad flows on
        dataset_idx = torch.sort(torch.arange(batch) % experts).values
        grad = torch.randn(batch, tokens, dim)
        inputs = (x, dataset_idx)
        reference = forward_backward(route_index, mlp, inputs, grad)
        diff = {key: max_rel_diff(forward_backward(routing, mlp, inputs, grad), reference)
                for key, routing in ROUTINGS.items() if key != "index"}
        ms = time_routings(mlp, inputs, grad, args.warmup, args.repeats)
        rows.append({"shape": name, "batch": batch, "tokens": tokens, "dim": dim,
                     "expert_dim": expert_dim, "experts": experts, "ms": ms,
                     "speedup_vs_index": {key: ms["index"] / ms[key] for key in ms},
                     "max_rel_diff": diff})
    return {
        "benchmark": "moe_routing",
        "device": "cpu",
        "device_name": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "rows": rows,
    }


def print_table(result: dict) -> None:
    print(f"MoE FFN routing, forward + backward of one layer ({result['threads']} threads)")
    print(f"{'shape':<24}{'routing':<9}{'ms':>9}{'vs index':>10}{'max diff':>11}")
    for row in result["rows"]:
        for key, ms in row["ms"].items():
            diff = row["max_rel_diff"].get(key)
            print(f"{row['shape']:<24}{key:<9}{ms:>9.2f}{row['speedup_vs_index'][key]:>9.2f}x"
                  f"{'-' if diff is None else f'{diff:.1e}':>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args()
    emit(run(args), print_table, args.out)


if __name__ == "__main__":
    main()
