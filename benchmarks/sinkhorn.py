"""Benchmark: segmented Sinkhorn-Knopp implementations side by side (PERF.md, METHOD.md §8 item 4).

Implementations, timed in one process on the same inputs:
  loop      the reference's way: a Python loop over keypoint types, masking each type's pixels
            and running SwAV's Sinkhorn on the small (K, n_j) matrix (many tiny ops, host syncs)
  torch     posebh's vectorised segmented path (scatter/gather over segment ids)
  compiled  torch.compile of the vectorised path
  triton    the fused kernels (CUDA only)
Shapes: the reference 6-dataset step (J = 214 types, M = 3; pixels simulated from a batch of 128
samples at sigma 2, see simulate_six_dataset_step) and the stress shape N = 262,144 x K = 170
(one segment, the clustering case). Reports median microseconds after warm-up and the speed-up
over the loop; on GPU also the fraction of memory bandwidth at (t + 2) * N * K * 4 bytes, with the
bandwidth from a device-to-device copy measured in the same run.

    python benchmarks/sinkhorn.py --device cpu --repeats 10
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from posebh_cli.io.atomic import atomic_write_json
from posebh_cli.ops.sinkhorn import (
    argmax_dim0,
    gumbel_argmax,
    segmented_sinkhorn_log_assignment,
)

EPS, ITERS, TAU = 0.05, 3, 0.5
HEATMAP_H, HEATMAP_W, SIGMA = 64, 48, 2.0
WINDOW_RADIUS = 3 * int(SIGMA)  # 13 x 13 window (METHOD.md §2 step 1)
# Reference mixture (METHOD.md §1/§4): name, keypoints, approximate training instances (sampling
# is proportional to size), typical fraction of keypoints visible.
MIXTURE = (
    ("coco", 17, 150_000, 0.65),
    ("aic", 14, 378_000, 0.80),
    ("mpii", 16, 22_000, 0.85),
    ("ap10k", 17, 7_000, 0.75),
    ("apt36k", 17, 25_000, 0.75),
    ("coco_wholebody", 133, 130_000, 0.55),
)
NUM_TYPES = sum(kpts for _, kpts, _, _ in MIXTURE)  # 214


def simulate_keypoints(name: str, num_kpts: int, gen: torch.Generator) -> torch.Tensor:
    """(num_kpts, 2) heatmap (x, y) of one instance: a body spread over the padded box; for
    COCO-WholeBody the 68 face and 2 x 21 hand points clustered in small regions."""
    box_w, box_h = HEATMAP_W / 1.25, HEATMAP_H / 1.25  # box padding 1.25
    origin = torch.tensor([(HEATMAP_W - box_w) / 2, (HEATMAP_H - box_h) / 2])
    size = torch.tensor([box_w, box_h])
    if name != "coco_wholebody":
        return origin + torch.rand(num_kpts, 2, generator=gen) * size
    body = origin + torch.rand(23, 2, generator=gen) * size  # 17 body + 6 feet
    groups = [body]
    for count, spread in ((68, 5.0), (21, 4.0), (21, 4.0)):  # face, left hand, right hand
        centre = origin + torch.rand(1, 2, generator=gen) * size
        groups.append(centre + (torch.rand(count, 2, generator=gen) - 0.5) * spread)
    return torch.cat(groups)


def simulate_six_dataset_step(batch: int = 128, seed: int = 0) -> tuple[torch.Tensor, dict]:
    """Global type id (N,) of every prototype-learning pixel of one batch (METHOD.md §2 step 1):
    pixels where some visible keypoint's Gaussian (13 x 13 window) is > 0, class = argmax."""
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([float(n) for _, _, n, _ in MIXTURE])
    datasets = torch.multinomial(sizes / sizes.sum(), batch, replacement=True, generator=gen)
    offsets = torch.cumsum(torch.tensor([0] + [k for _, k, _, _ in MIXTURE]), 0)
    ys = torch.arange(HEATMAP_H, dtype=torch.float32)[:, None]
    xs = torch.arange(HEATMAP_W, dtype=torch.float32)[None, :]
    type_ids, visible_total = [], 0
    for d in datasets.tolist():
        name, num_kpts, _, visible_frac = MIXTURE[d]
        kpts = simulate_keypoints(name, num_kpts, gen).round()
        visible = torch.rand(num_kpts, generator=gen) < visible_frac
        inside = (kpts[:, 0] >= 0) & (kpts[:, 0] < HEATMAP_W) & (kpts[:, 1] >= 0)
        visible &= inside & (kpts[:, 1] < HEATMAP_H)
        if not visible.any():
            continue
        visible_total += int(visible.sum())
        kx, ky = kpts[visible, 0, None, None], kpts[visible, 1, None, None]
        dx, dy = xs - kx, ys - ky  # (V, H, W)
        gauss = torch.exp(-(dx**2 + dy**2) / (2 * SIGMA**2))
        gauss *= (dx.abs() <= WINDOW_RADIUS) & (dy.abs() <= WINDOW_RADIUS)
        best, owner = gauss.max(dim=0)
        local_ids = torch.nonzero(visible).squeeze(1)
        type_ids.append(offsets[d] + local_ids[owner[best > 0]])
    segment_ids = torch.cat(type_ids)
    info = {"batch": batch, "visible_keypoints": visible_total, "pixels": int(segment_ids.numel()),
            "samples_per_dataset": {MIXTURE[i][0]: int((datasets == i).sum())
                                    for i in range(len(MIXTURE))}}
    return segment_ids, info


def swav_sinkhorn(scores: torch.Tensor) -> torch.Tensor:
    """SwAV's Sinkhorn on one type's (n, K) scores, eager fp32 as the reference writes it."""
    q = torch.exp((scores - scores.max()) / EPS).t()  # (K, n)
    q /= q.sum()
    num_protos, num_pixels = q.shape
    for _ in range(ITERS):
        q /= q.sum(dim=1, keepdim=True)
        q /= num_protos
        q /= q.sum(dim=0, keepdim=True)
        q /= num_pixels
    q *= num_pixels
    return q.t()


def per_type_loop(scores: torch.Tensor, segment_ids: torch.Tensor, num_types: int):
    """The reference's way (METHOD.md §8 item 4): one small problem per type in a Python loop."""
    assignment = torch.zeros_like(scores)
    hard = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    sampled = torch.zeros_like(hard)
    for j in range(num_types):
        mask = segment_ids == j
        if mask.sum() == 0:  # host sync per type, as in the reference
            continue
        q = swav_sinkhorn(scores[mask])
        assignment[mask] = q
        hard[mask] = q.argmax(dim=1)
        sampled[mask] = gumbel_argmax(q.log(), TAU, None)
    return assignment, hard, sampled


def vectorised(scores: torch.Tensor, segment_ids: torch.Tensor, num_types: int):
    """posebh's torch path (what segmented_sinkhorn(backend="torch") runs)."""
    log_q_t = segmented_sinkhorn_log_assignment(scores, segment_ids, num_types, EPS, ITERS)
    hard = argmax_dim0(log_q_t)
    sampled = gumbel_argmax(log_q_t, TAU, None, dim=0)
    return log_q_t.exp().t().contiguous(), hard, sampled


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_us(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def copy_bandwidth(device: torch.device) -> float:
    """Bytes/s of a device-to-device copy of 512 MiB (read + write counted)."""
    src = torch.empty(128 * 2**20, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = median_us(lambda: dst.copy_(src), device, 3, 20) / 1e6
    return 2 * src.numel() * 4 / seconds


def implementations(device: torch.device) -> dict[str, Callable]:
    impls: dict[str, Callable] = {"loop": per_type_loop, "torch": vectorised}
    impls["compiled"] = torch.compile(vectorised, dynamic=False)
    if device.type == "cuda":
        from posebh_cli.ops.sinkhorn_triton import segmented_sinkhorn_triton

        def triton_path(scores, segment_ids, num_types):
            result = segmented_sinkhorn_triton(scores, segment_ids, num_types, EPS, ITERS, TAU,
                                               seed=0)
            return result.assignment, result.hard, result.sampled

        impls["triton"] = triton_path
    return impls


def run_case(name, scores, segment_ids, num_types, device, warmup, repeats, bandwidth):
    row = {"case": name, "N": scores.shape[0], "K": scores.shape[1], "segments": num_types,
           "median_us": {}, "speedup_vs_loop": {}, "errors": {}}
    reference = None
    for impl_name, fn in implementations(device).items():
        try:
            out = fn(scores, segment_ids, num_types)
            if reference is None:
                reference = out[0]
            max_diff = float((out[0] - reference).abs().max()) if scores.numel() else 0.0
            row.setdefault("max_abs_diff_vs_loop", {})[impl_name] = max_diff
            row["median_us"][impl_name] = median_us(
                lambda fn=fn: fn(scores, segment_ids, num_types), device, warmup, repeats)
        except Exception as error:  # record and go on: one failing path must not hide the others
            row["errors"][impl_name] = f"{type(error).__name__}: {error}"[:300]
    loop_us = row["median_us"].get("loop")
    for impl_name, us in row["median_us"].items():
        row["speedup_vs_loop"][impl_name] = loop_us / us if loop_us else None
    if bandwidth:
        bytes_moved = (ITERS + 2) * scores.numel() * 4
        row["bandwidth_fraction"] = {k: bytes_moved / (us / 1e6) / bandwidth
                                     for k, us in row["median_us"].items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats (default 20 on the step, 5 on the stress shape;"
                        " 3 on CPU for the stress shape)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default benchmarks/results/sinkhorn_<device>.json)")
    parser.add_argument("--quick", action="store_true",
                        help="few repeats and a 16x smaller stress shape (smoke run)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); recorded in the JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    step_repeats = args.repeats or (3 if args.quick else 20)
    stress_repeats = args.repeats or (2 if args.quick else (3 if device.type == "cpu" else 20))
    warmup = 1 if args.quick else 3

    segment_ids, step_info = simulate_six_dataset_step()
    print(f"6-dataset step: batch 128 -> {step_info['visible_keypoints']} visible keypoints, "
          f"N = {step_info['pixels']} pixels over {NUM_TYPES} types "
          f"(samples: {step_info['samples_per_dataset']})")
    gen = torch.Generator().manual_seed(1)
    step_scores = torch.rand(segment_ids.numel(), 3, generator=gen)  # |cos| in [0, 1]
    stress_n = 262_144 // (16 if args.quick else 1)
    stress_scores = torch.rand(stress_n, 170, generator=gen)

    bandwidth = copy_bandwidth(device) if device.type == "cuda" else None
    cases = [
        ("6-dataset step", step_scores, segment_ids, NUM_TYPES, step_repeats),
        ("stress one segment", stress_scores, torch.zeros(stress_n, dtype=torch.long), 1,
         stress_repeats),
    ]
    rows = []
    for name, scores, ids, num_types, repeats in cases:
        rows.append(run_case(name, scores.to(device), ids.to(device), num_types, device,
                             warmup, repeats, bandwidth))

    print(f"\ndevice: {device_name(device)}; t = {ITERS}; median microseconds after warm-up")
    header = f"{'case':<20}{'N x K':>16}{'impl':>10}{'median us':>14}{'vs loop':>10}"
    print(header + (f"{'BW frac':>10}" if bandwidth else ""))
    for row in rows:
        for impl_name, us in row["median_us"].items():
            line = (f"{row['case']:<20}{row['N']:>9} x {row['K']:<4}{impl_name:>10}{us:>14.0f}"
                    f"{row['speedup_vs_loop'][impl_name]:>9.1f}x")
            if bandwidth:
                line += f"{row['bandwidth_fraction'][impl_name]:>10.2f}"
            print(line)
        for impl_name, error in row["errors"].items():
            print(f"{row['case']:<20}{'':>16}{impl_name:>10}  failed: {error}")
    out = args.out or Path(__file__).resolve().parent / "results" / f"sinkhorn_{device.type}.json"
    atomic_write_json(out, {
        "device": device_name(device), "torch": torch.__version__, "iters": ITERS, "eps": EPS,
        "quick": args.quick, "threads": torch.get_num_threads(),
        "copy_bandwidth_bytes_per_s": bandwidth,
        "step_simulation": step_info, "cases": rows,
    })
    print(f"wrote {out}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


if __name__ == "__main__":
    main()
