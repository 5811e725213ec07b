"""Benchmark: how the ViTPose++ MoE FFN selects each sample's expert (posebh_cli/models/moe.py).

Routings, timed forward + backward through one expert slice in one process on the same inputs:
  index     expert_weight[dataset_idx] -> (B, P, 4D), then baddbmm. Its backward is an
            accumulating index_put into (E, P, 4D), which serialises over the batch
  one_hot   one_hot(dataset_idx) (B, E) @ expert_weight (E, P*4D), then the same baddbmm (what
            MoEMlp does for a batch in any order): the backward of the selection is one
            (E, B) @ (B, P*4D) GEMM
  slices    the batch sorted by dataset (as the training loader's is): each expert is one Linear
            on its run of rows (moe.experts_by_slices, what MoEMlp does when given the run
            lengths); no per-sample weight copy, and the backward is plain GEMMs and a cat
One-hot selection gives bitwise the outputs of indexing (exact 0/1 products); the slices use
another GEMM, and every routing sums the expert-weight gradient in its own order, so they agree
with indexing to rounding (reported as the largest difference relative to the largest value).
All routings see the same batch, sorted by dataset.
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

from posebh_cli.models.moe import experts_by_slices, select_experts

# name, batch, tokens, dim D, expert slice P, experts E
SHAPES = (
    ("tiny recipe layer", 64, 48, 192, 48, 3),
    ("ViT-B 6-dataset layer", 16, 192, 768, 192, 6),
)


def route_index(hidden, weight, bias, dataset_idx):
    """(B, N, 4D), (E, P, 4D), (E, P), (B,) -> (B, N, P) by indexing."""
    return torch.baddbmm(bias[dataset_idx].unsqueeze(1), hidden,
                         weight[dataset_idx].transpose(1, 2))


def route_one_hot(hidden, weight, bias, dataset_idx):
    """Same result as route_index, selecting as MoEMlp does (moe.select_experts)."""
    selected, selected_bias = select_experts(weight, bias, dataset_idx, hidden.dtype)
    return torch.baddbmm(selected_bias, hidden, selected.transpose(1, 2))


def route_slices(hidden, weight, bias, dataset_idx):
    """Same result for a batch sorted by dataset: one Linear per run of rows."""
    sizes = torch.bincount(dataset_idx, minlength=weight.shape[0]).tolist()
    return experts_by_slices(hidden, weight, bias, sizes)


ROUTINGS: dict[str, Callable] = {"index": route_index, "one_hot": route_one_hot,
                                 "slices": route_slices}


def time_routing(routing: Callable, inputs: tuple, grad: torch.Tensor, warmup: int,
                 repeats: int) -> float:
    """Median milliseconds of forward + backward."""
    times = []
    for i in range(warmup + repeats):
        for tensor in inputs[:3]:
            tensor.grad = None
        start = time.perf_counter()
        routing(*inputs).backward(grad)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name, batch, tokens, dim, expert_dim, experts in SHAPES:
        gen = torch.Generator().manual_seed(0)
        hidden = torch.randn(batch, tokens, 4 * dim, generator=gen).requires_grad_()
        weight = (0.02 * torch.randn(experts, expert_dim, 4 * dim, generator=gen)).requires_grad_()
        bias = torch.randn(experts, expert_dim, generator=gen).requires_grad_()
        dataset_idx = torch.sort(torch.arange(batch) % experts).values
        grad = torch.randn(batch, tokens, expert_dim, generator=gen)
        inputs = (hidden, weight, bias, dataset_idx)
        outputs = {}
        for key, routing in ROUTINGS.items():
            for tensor in inputs[:3]:
                tensor.grad = None
            out = routing(*inputs)
            out.backward(grad)
            outputs[key] = (out.detach(), weight.grad.clone())
        reference_out, reference_grad = outputs["index"]
        out_diff = {key: float((out - reference_out).abs().max() / reference_out.abs().max())
                    for key, (out, _) in outputs.items() if key != "index"}
        grad_diff = {key: float((g - reference_grad).abs().max() / reference_grad.abs().max())
                     for key, (_, g) in outputs.items() if key != "index"}
        ms = {key: time_routing(routing, inputs, grad, args.warmup, args.repeats)
              for key, routing in ROUTINGS.items()}
        rows.append({"shape": name, "batch": batch, "tokens": tokens, "dim": dim,
                     "expert_dim": expert_dim, "experts": experts, "ms": ms,
                     "speedup_vs_index": {key: ms["index"] / ms[key] for key in ms},
                     "output_max_rel_diff": out_diff, "grad_max_rel_diff": grad_diff})
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
    print(f"MoE expert routing, forward + backward of one layer's expert slice "
          f"({result['threads']} threads)")
    print(f"{'shape':<24}{'routing':<9}{'ms':>9}{'vs index':>10}{'output diff':>13}"
          f"{'grad diff':>11}")
    for row in result["rows"]:
        for key, ms in row["ms"].items():
            out = row["output_max_rel_diff"].get(key)
            grad = row["grad_max_rel_diff"].get(key)
            print(f"{row['shape']:<24}{key:<9}{ms:>9.2f}{row['speedup_vs_index'][key]:>9.2f}x"
                  f"{'-' if out is None else f'{out:.1e}':>13}"
                  f"{'-' if grad is None else f'{grad:.1e}':>11}")


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
