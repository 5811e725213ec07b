"""Data pipeline throughput for ONE worker (single process, single thread).

Top-down training samples at 256x192 input, 64x48 heatmaps, K = 17, full training augmentation
(flip, half-body, scale, rotation), UDP targets, uint8 crops:
  (a) decode: every sample decodes its JPEG (cv2.imread), no cache;
  (b) cache:  decoded images come from the ImageCache (all hits after warm-up).
Images: 640x480 JPEGs made on the fly (smooth shapes + noise, ~quality 90), and the real COCO
sample images when ../shared/data/coco exists. Also times each stage of the hot path.

Usage: python benchmarks/pipeline.py [--samples 1000] [--repeats 3] [--out FILE.json]
The machine's load average is recorded: on a shared machine the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posebh_cli.codecs import encode
from posebh_cli.data.affine import box_to_center_scale, transform_points, warp_image, warp_matrix
from posebh_cli.data.image_cache import ImageCache, read_image, to_warp_layout
from posebh_cli.data.records import InstanceTable
from posebh_cli.data.topdown_dataset import TopDownDataset
from posebh_cli.data.transforms import TopDownConfig, TopDownTransform
from posebh_cli.io.atomic import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
SHARED_COCO = REPO.parent / "shared" / "data" / "coco"
COCO_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
COCO_UPPER = np.arange(11)


def _synthetic_images(folder: Path, count: int, rng: np.random.Generator) -> list[str]:
    names = []
    for i in range(count):
        image = np.zeros((480, 640, 3), np.uint8)
        image[:] = rng.integers(0, 255, 3)
        for _ in range(12):
            centre = tuple(int(v) for v in rng.integers(0, [640, 480]))
            colour = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(image, centre, int(rng.integers(10, 120)), colour, -1)
        image = cv2.GaussianBlur(image, (0, 0), 3)
        noise = rng.normal(0, 8, image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        name = f"synthetic_{i:03d}.jpg"
        cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        names.append(name)
    return names


def _table(root: str, files: list[str], sizes: list[tuple[int, int]], n: int, seed: int):
    """n person-like instances spread over the images: box + 17 keypoints inside it."""
    rng = np.random.default_rng(seed)
    image_index = np.arange(n) % len(files)
    hw = np.array(sizes, dtype=np.float64)[image_index]  # (n, 2) (H, W)
    bw = rng.uniform(0.2, 0.5, n) * hw[:, 1]
    bh = np.minimum(bw * rng.uniform(1.2, 2.5, n), 0.9 * hw[:, 0])
    bx = rng.uniform(0, 1, n) * (hw[:, 1] - bw)
    by = rng.uniform(0, 1, n) * (hw[:, 0] - bh)
    boxes = np.stack([bx, by, bw, bh], axis=1).astype(np.float32)
    rel = rng.uniform(0.05, 0.95, size=(n, 17, 2))
    xy = boxes[:, None, :2] + rel * boxes[:, None, 2:]
    vis = np.where(rng.random((n, 17)) < 0.85, 2.0, 0.0)
    keypoints = np.concatenate([xy, vis[..., None]], axis=2).astype(np.float32)
    return InstanceTable(
        dataset="bench",
        skeleton="coco",
        image_root=root,
        image_files=np.array(files),
        image_ids=np.arange(len(files), dtype=np.int64),
        image_sizes=np.array(sizes, dtype=np.int32),
        image_index=image_index.astype(np.int64),
        boxes=boxes,
        keypoints=keypoints,
        areas=(0.53 * boxes[:, 2] * boxes[:, 3]).astype(np.float32),
        instance_ids=np.arange(n, dtype=np.int64),
        category_ids=np.ones(n, dtype=np.int64),
        scores=np.ones(n, dtype=np.float32),
    )


def _rate(dataset: TopDownDataset, samples: int, repeats: int) -> tuple[float, list[float]]:
    """Median samples/s over `repeats` passes of `samples` seeded keys, after one warm-up pass."""
    n = len(dataset)
    keys = [(i % n, 1000 + i) for i in range(samples)]
    for key in keys[: min(200, samples)]:
        dataset[key]
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i, _ in keys:
            dataset[(i, r * samples + i)]
        rates.append(samples / (time.perf_counter() - start))
    return statistics.median(rates), rates


def _stage_times(table: InstanceTable, config: TopDownConfig, n: int) -> dict[str, float]:
    """Microseconds per sample of each hot-path stage (decode, rng, warp, encode, to-tensor)."""
    transform = TopDownTransform(config)
    image_path = table.image_path(0)
    image_bgr = read_image(image_path)
    image = to_warp_layout(image_bgr)
    out: dict[str, float] = {}

    def timed(name, fn):
        fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        out[name] = (time.perf_counter() - start) / n * 1e6

    box, kps = table.boxes[0], table.keypoints[0]
    center, scale = box_to_center_scale(box, config.aspect_ratio)
    m = warp_matrix(center, scale, 30.0, config.input_size, True)
    crop = warp_image(image, m, config.input_size)
    kin = transform_points(kps[:, :2], m)
    timed("jpeg_decode", lambda: read_image(image_path))
    timed("rng_create", lambda: np.random.default_rng(12345))
    timed(
        "crop_params",
        lambda: transform.crop_params(
            box, kps, image.shape[1], COCO_FLIP, COCO_UPPER, np.random.default_rng(1), True
        ),
    )
    timed("to_bgra", lambda: to_warp_layout(image_bgr))
    timed("warp_affine_bgr", lambda: warp_image(image_bgr, m, config.input_size))
    timed("warp_affine_bgra", lambda: warp_image(image, m, config.input_size))
    timed("encode_udp", lambda: encode(kin, kps[:, 2] > 0, (256, 192), (64, 48), 2.0, "udp"))
    timed("hwc_bgra_to_chw_rgb", lambda: np.ascontiguousarray(crop.transpose(2, 0, 1)[2::-1]))
    timed(
        "full_transform",
        lambda: transform(image, box, kps, COCO_FLIP, COCO_UPPER, np.random.default_rng(1)),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=64, help="synthetic JPEGs to make")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pipeline.json")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    config = TopDownConfig(input_size=(256, 192), heatmap_size=(64, 48), sigma=2.0, encoding="udp")
    transform = TopDownTransform(config)
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = [("synthetic 640x480", tmp, _synthetic_images(Path(tmp), args.images, rng))]
        if SHARED_COCO.exists():
            sources.append(
                (
                    "COCO samples",
                    str(SHARED_COCO),
                    sorted(p.name for p in SHARED_COCO.glob("*.jpg")),
                )
            )
        stages = None
        for label, root, files in sources:
            sizes = [read_image(Path(root) / f).shape[:2] for f in files]
            table = _table(root, files, sizes, n=max(512, len(files)), seed=1)
            for mode in ("decode", "cache"):
                cache = ImageCache(max_bytes=2 << 30) if mode == "cache" else None
                if cache is not None:
                    cache.predecode(table.image_path(i) for i in range(len(table)))
                ds = TopDownDataset(table, transform, 0, COCO_FLIP, COCO_UPPER, cache, train=True)
                median, rates = _rate(ds, args.samples, args.repeats)
                results.append(
                    {
                        "images": label,
                        "mode": mode,
                        "samples_per_s": median,
                        "ms_per_sample": 1000.0 / median,
                        "repeats": rates,
                    }
                )
            if stages is None:
                stages = _stage_times(table, config, 300)

    print(f"{'images':<20} {'mode':<8} {'samples/s':>10} {'ms/sample':>10}")
    for row in results:
        print(
            f"{row['images']:<20} {row['mode']:<8} {row['samples_per_s']:>10.0f} "
            f"{row['ms_per_sample']:>10.3f}"
        )
    print("\nstage (us per sample, synthetic 640x480)")
    for name, us in stages.items():
        print(f"  {name:<22} {us:>9.1f}")
    report = {
        "benchmark": "pipeline",
        "device": f"cpu: {platform.processor() or platform.machine()}, 1 thread",
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "shapes": {
            "input": [256, 192],
            "heatmap": [64, 48],
            "keypoints": 17,
            "sigma": 2.0,
            "encoding": "udp",
            "augmentation": "flip, half-body, scale, rotation",
        },
        "load_average_1_5_15_min": list(os.getloadavg()),
        "samples": args.samples,
        "repeats": args.repeats,
        "target_samples_per_s_cache": 400,
        "results": results,
        "stages_us": stages,
    }
    atomic_write_json(args.out, report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
