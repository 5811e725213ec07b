"""OKS keypoint AP: our vectorised evaluator vs pycocotools, same inputs, same process.

Synthetic COCO-style case: 5,000 images x 3 GT instances x 17 keypoints (COCO sigmas), with
perturbed predictions (one per GT plus ~10% extra false positives, some missed instances, some
crowd GT). Times the full scoring from in-memory GT/results dicts: for pycocotools, COCO objects
+ loadRes + evaluate + accumulate + summarize (what `oks_stats(backend="pycocotools")` runs);
for ours, the same through `backend="fast"`. Asserts identical stats, reports medians after one
warm-up and the speed ratio.

Usage: python benchmarks/metrics.py [--images 5000] [--instances 3] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from posebh_cli.io.atomic import atomic_write_json
from posebh_cli.metrics.oks import oks_stats

REPO = Path(__file__).resolve().parents[1]
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10.0


def make_case(num_images: int, instances: int, num_keypoints: int, seed: int = 0):
    """GT dict and results list (perturbed, missing and extra predictions)."""
    rng = np.random.default_rng(seed)
    n = num_images * instances
    image_ids = np.repeat(np.arange(1, num_images + 1), instances)
    centre = rng.uniform(100, 500, (n, 2))
    size = rng.uniform(20, 300, (n, 2))
    kpts = np.zeros((n, num_keypoints, 3))
    kpts[..., :2] = centre[:, None] + rng.uniform(-0.5, 0.5, (n, num_keypoints, 2)) * size[:, None]
    vis = rng.choice([0, 1, 2], (n, num_keypoints), p=[0.2, 0.2, 0.6])
    kpts[..., 2] = vis
    kpts[vis == 0, :2] = 0
    crowd = rng.random(n) < 0.02
    anns = [{"id": i + 1, "image_id": int(image_ids[i]), "category_id": 1,
             "keypoints": kpts[i].ravel().tolist(), "num_keypoints": int((vis[i] > 0).sum()),
             "bbox": [*(centre[i] - size[i] / 2).tolist(), *size[i].tolist()],
             "area": float(size[i].prod() * 0.53), "iscrowd": int(crowd[i])} for i in range(n)]
    noise = rng.choice([1.0, 3.0, 8.0, 20.0], n)[:, None, None]
    det = kpts.copy()
    det[..., :2] = centre[:, None] + rng.uniform(-0.5, 0.5, det[..., :2].shape) * size[:, None]
    det[..., :2] = np.where(vis[..., None] > 0, kpts[..., :2], det[..., :2])
    det[..., :2] += rng.normal(0, 1, det[..., :2].shape) * noise
    det[..., 2] = rng.uniform(0.1, 1.0, (n, num_keypoints))
    keep = rng.random(n) > 0.05  # 5% missed instances
    results = [{"image_id": int(image_ids[i]), "category_id": 1,
                "keypoints": det[i].ravel().tolist(), "score": float(rng.random())}
               for i in np.flatnonzero(keep)]
    for i in rng.choice(n, n // 10, replace=False):  # 10% extra false positives
        junk = det[i].copy()
        junk[:, :2] += rng.uniform(-200, 200, 2)
        results.append({"image_id": int(image_ids[i]), "category_id": 1,
                        "keypoints": junk.ravel().tolist(), "score": float(rng.random())})
    gt = {"images": [{"id": i} for i in range(1, num_images + 1)], "annotations": anns,
          "categories": [{"id": 1, "name": "person"}]}
    return gt, results


def time_backend(gt, results, backend: str, repeats: int) -> tuple[float, list[float], dict]:
    stats = oks_stats(gt, results, COCO_SIGMAS, backend)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stats = oks_stats(gt, results, COCO_SIGMAS, backend)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--keypoints", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                        "metrics.json")
    args = parser.parse_args()
    if args.keypoints != len(COCO_SIGMAS):
        parser.error("--keypoints must be 17 (COCO sigmas)")
    gt, results = make_case(args.images, args.instances, args.keypoints)
    reference_s, reference_all, reference = time_backend(gt, results, "pycocotools",
                                                         args.repeats)
    fast_s, fast_all, fast = time_backend(gt, results, "fast", args.repeats)
    max_diff = max(abs(reference[k] - fast[k]) for k in reference)
    assert max_diff == 0.0, f"stats differ by {max_diff}: {reference} vs {fast}"
    ratio = reference_s / fast_s

    print(f"OKS AP, {args.images} images x {args.instances} instances x {args.keypoints} "
          f"keypoints ({len(results)} predictions), median of {args.repeats} after warm-up")
    print(f"{'backend':<14}{'seconds':>10}{'images/s':>12}")
    for name, seconds in (("pycocotools", reference_s), ("fast (ours)", fast_s)):
        print(f"{name:<14}{seconds:>10.3f}{args.images / seconds:>12.0f}")
    print(f"speed-up: {ratio:.1f}x; stats identical (max |diff| = {max_diff}); "
          f"AP = {fast['AP']:.6f}, AR = {fast['AR']:.6f}")
    atomic_write_json(args.out, {
        "benchmark": "oks_keypoint_ap",
        "device": f"cpu ({platform.processor() or platform.machine()}), python "
                  f"{platform.python_version()}",
        "images": args.images, "instances_per_image": args.instances,
        "keypoints": args.keypoints, "predictions": len(results), "repeats": args.repeats,
        "pycocotools_s": reference_s, "fast_s": fast_s,
        "pycocotools_all_s": reference_all, "fast_all_s": fast_all,
        "speedup_fast_vs_pycocotools": ratio, "identical_stats": max_diff == 0.0,
        "stats": fast,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
