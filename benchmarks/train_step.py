"""Benchmark: one PoseBH training step vs the same model with prototypes, PPC/PPD and CSS off.

Variants, timed in one process on the same in-memory batches (goal: full <= 1.25x on CPU with
the tiny model, <= 1.10x on a GPU with ViT-B):
  full      every part training, prototype learning (Sinkhorn-Knopp + momentum update), PPC/PPD,
            prototype heatmaps and cross-type self-supervision all in one step (METHOD.md §2-3);
            no stage of the reference schedule runs all of these at once, so this is the worst case
  stage3    METHOD.md stage 3: every part training, prototypes frozen (targets from Sinkhorn, no
            update), CSS on: the most expensive step the schedule runs
  no_css    every part training and prototype learning, CSS off
  baseline  the same model training backbone + keypoint heads with the keypoint loss only: the
            embedding head is skipped (StepSettings.uses_prototypes is False), so this is the
            multi-head ViTPose++ step PoseBH starts from
  stage1    for reference, METHOD.md stage 1: backbone and heads frozen, embedding head and
            prototypes learning
  stage2    for reference, METHOD.md stage 2: backbone frozen, heads + embedding head with CSS
  vitpose_all_heads  for context, not the goal's baseline: the keypoint-only step as the
            reference ViTPose++ code runs it, every head on the WHOLE batch (BN over all samples)
            and each head's loss on its own dataset's rows; posebh's baseline runs each head on
            its own samples only, so CSS (which needs every head on the other datasets' samples)
            pays for head work the reference's plain step already does
A step is forward + losses + backward + gradient clipping + AdamW + the prototype copy, as in the
trainer. After the timed rounds, one more step per variant runs under torch's FlopCounterMode
(matmuls, convolutions, attention; forward and backward): its ratio to the baseline is the
floor any implementation of that variant's maths pays on the same model, so the table shows how
much of a time ratio is the method's extra convolutions and how much is overhead. Variants are
interleaved round by round so a loaded machine slows them alike; the table shows the median
milliseconds per step after warm-up and the ratio to the baseline.

    python benchmarks/train_step.py --device cpu --batch-size 64 --steps 12 --threads 2 \\
        --out benchmarks/results/train_step_cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from report import emit
from torch.utils.flop_counter import FlopCounterMode

from posebh_cli.codecs.encode import encode
from posebh_cli.data.transforms import normalize_images
from posebh_cli.engine.build import build_recipe_model, type_table_of
from posebh_cli.engine.optim import build_optimizer
from posebh_cli.engine.train_step import StepOutput, StepSettings, compute_losses
from posebh_cli.losses.keypoint import multi_head_keypoint_loss
from posebh_cli.models.posebh import contiguous_group_sizes, group_samples_by_dataset
from posebh_cli.recipe import PARTS, StageConfig, load_recipe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO / "recipes" / "synthetic_tiny.toml"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
GOAL_RATIO = {"cpu": 1.25, "cuda": 1.10}  # full step / baseline step

STAGES = {
    "full": StageConfig("full", steps=1, train=PARTS, prototypes="learn", css=True),
    "stage3": StageConfig("stage3", steps=1, train=PARTS, prototypes="frozen", css=True),
    "no_css": StageConfig("no_css", steps=1, train=PARTS, prototypes="learn", css=False),
    "baseline": StageConfig("baseline", steps=1, train=("backbone", "keypoint_heads"),
                            prototypes="frozen", css=False),
    "stage1": StageConfig("stage1", steps=1, train=("embedding_head",), prototypes="learn",
                          css=False),
    "stage2": StageConfig("stage2", steps=1, train=("keypoint_heads", "embedding_head"),
                          prototypes="frozen", css=True),
}


def all_heads_losses(model, images, batch, groups, settings, *, autocast_dtype,
                     **_) -> StepOutput:
    """The reference ViTPose++ step: backbone, every head on all B samples, each head's
    keypoint loss on its own dataset's rows (the `vitpose_all_heads` variant)."""
    heatmaps, indices = {}, {}
    with torch.autocast(images.device.type, dtype=autocast_dtype or torch.float32,
                        enabled=autocast_dtype is not None):
        features = model.backbone(images, batch["dataset_idx"], contiguous_group_sizes(groups))
        for d, (name, head) in enumerate(model.heads.items()):
            if groups[d].numel():
                index = groups[d].to(features.device)
                heatmaps[name] = head(features).index_select(0, index).float()  # (B_d, K_d, h, w)
                indices[name] = index
    kpt, _ = multi_head_keypoint_loss(heatmaps, indices, batch["heatmaps"], batch["weights"],
                                      kind=settings.loss.keypoint,
                                      head_weights=settings.head_weights)
    kpt = settings.loss.keypoint_weight * kpt
    return StepOutput(kpt, {"loss": kpt.detach()}, None)


def make_batches(recipe, model, batch_size: int, count: int, seed: int = 0) -> list[dict]:
    """Random uint8 images and UDP Gaussian targets of random keypoints (80% labelled); the
    datasets take turns so every batch mixes all skeletons (CSS needs other datasets)."""
    rng = np.random.default_rng(seed)
    (in_h, in_w), hm_size = recipe.model.input_size, tuple(recipe.model.heatmap_size)
    num_kpts = [head.num_keypoints for head in model.heads.values()]
    batches = []
    for b in range(count):
        # sorted by dataset, as the training loader's batches are (collate_pose_batch)
        dataset_idx = np.sort((np.arange(batch_size) + b) % len(num_kpts))
        heatmaps = torch.zeros(batch_size, max(num_kpts), *hm_size)
        weights = torch.zeros(batch_size, max(num_kpts))
        for i, d in enumerate(dataset_idx):
            k = num_kpts[d]
            xy = rng.uniform([in_w * 0.1, in_h * 0.1], [in_w * 0.9, in_h * 0.9], size=(k, 2))
            hm, w = encode(xy, rng.random(k) < 0.8, (in_h, in_w), hm_size,
                           sigma=recipe.loss.sigma, method="udp")
            heatmaps[i, :k], weights[i, :k] = torch.from_numpy(hm), torch.from_numpy(w)
        images = torch.from_numpy(rng.integers(0, 256, (batch_size, 3, in_h, in_w), np.uint8))
        batches.append({"image": images, "heatmaps": heatmaps, "weights": weights,
                        "dataset_idx": torch.from_numpy(dataset_idx.astype(np.int64))})
    return batches


class StepRunner:
    """One variant: its own model copy and optimizer, stepping like the trainer does."""

    def __init__(self, recipe, model, stage: StageConfig, device, autocast_dtype,
                 losses=compute_losses) -> None:
        self.model = model.to(device).train()
        self.model.set_frozen([p for p in PARTS if p not in stage.train])
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.model, recipe.optimizer,
                                         len(self.model.backbone.blocks))
        self.settings = StepSettings(stage, recipe.loss, recipe.prototypes,
                                     recipe.loss_weights())
        self.grad_clip = recipe.optimizer.grad_clip
        self.device, self.autocast_dtype, self.seed = device, autocast_dtype, recipe.seed
        self.losses = losses
        self.step = 0

    def __call__(self, batch: dict) -> float:
        """One step; returns its wall time in seconds (device synchronised)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        groups = group_samples_by_dataset(batch["dataset_idx"], len(self.model.heads))
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        out = self.losses(self.model, normalize_images(batch["image"]), batch, groups,
                             self.settings, autocast_dtype=self.autocast_dtype,
                             sinkhorn_seed=self.seed * 1_000_003 + self.step)
        loss_value = float(out.terms["loss"])  # the trainer's one host sync (finite check)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.grad_clip)
        self.optimizer.step()
        if out.new_prototypes is not None:
            self.model.prototype_table.prototypes.copy_(out.new_prototypes)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.step += 1
        if not np.isfinite(loss_value):
            raise RuntimeError(f"non-finite loss {loss_value} in the benchmark step")
        return time.perf_counter() - start


def count_flops(step: StepRunner, batch: dict) -> int:
    """Matmul / convolution / attention FLOPs of one step (forward + backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step(batch)
    return counter.get_total_flops()


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    precision = args.precision or recipe.train.precision
    autocast_dtype = PRECISIONS[precision]
    if autocast_dtype is torch.float16 and device.type != "cuda":
        raise SystemExit("--precision fp16 needs --device cuda")
    types = type_table_of(recipe)
    runners = {name: StepRunner(recipe, build_recipe_model(recipe, types), stage, device,
                                autocast_dtype)
               for name, stage in STAGES.items()}
    runners["vitpose_all_heads"] = StepRunner(recipe, build_recipe_model(recipe, types),
                                              STAGES["baseline"], device, autocast_dtype,
                                              losses=all_heads_losses)
    warmup = 2 if args.quick else 3
    steps = max(3, args.steps // 4) if args.quick else args.steps
    batches = make_batches(recipe, runners["full"].model, args.batch_size, warmup + steps)
    times = {name: [] for name in runners}
    for i, batch in enumerate(batches):
        for name, step in runners.items():  # interleaved: each round times every variant
            seconds = step(batch)
            if i >= warmup:
                times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["baseline"]
    flops = {name: count_flops(step, batches[-1]) for name, step in runners.items()}
    goal = GOAL_RATIO.get(device.type, GOAL_RATIO["cpu"])
    return {
        "benchmark": "train_step",
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "recipe": str(Path(args.recipe).name),
        "backbone": recipe.model.backbone,
        "input_size": list(recipe.model.input_size),
        "heatmap_size": list(recipe.model.heatmap_size),
        "datasets": [f"{d}:{s.num_keypoints}" for d, s in zip(types.datasets, types.skeletons)],
        "batch_size": args.batch_size,
        "precision": precision,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "median_ms": {name: round(1e3 * m, 2) for name, m in medians.items()},
        "ratio_to_baseline": {name: round(m / base, 3) for name, m in medians.items()},
        "gflop_per_step": {name: round(f / 1e9, 2) for name, f in flops.items()},
        "flop_ratio_to_baseline": {name: round(f / flops["baseline"], 3)
                                   for name, f in flops.items()},
        "full_to_vitpose_all_heads": round(medians["full"] / medians["vitpose_all_heads"], 3),
        "stage3_to_vitpose_all_heads": round(medians["stage3"] / medians["vitpose_all_heads"], 3),
        "goal": f"full <= {goal} x baseline",
        "goal_met": medians["full"] / base <= goal,
        "stage3_within_goal": medians["stage3"] / base <= goal,
    }


def print_table(result: dict) -> None:
    print(f"train step, {result['backbone']} {result['input_size']} batch "
          f"{result['batch_size']} {result['precision']} on {result['device']} "
          f"({result['threads']} threads, load {result['load_average'][0]:.1f})")
    print(f"{'variant':<18} {'ms/step':>10} {'x baseline':>11} {'GFLOP':>8} {'FLOPs x':>8}")
    for name, ms in result["median_ms"].items():
        print(f"{name:<18} {ms:>10.1f} {result['ratio_to_baseline'][name]:>11.3f} "
              f"{result['gflop_per_step'][name]:>8.1f} "
              f"{result['flop_ratio_to_baseline'][name]:>8.3f}")
    print(f"full / vitpose_all_heads {result['full_to_vitpose_all_heads']:.3f}, stage3 / "
          f"vitpose_all_heads {result['stage3_to_vitpose_all_heads']:.3f} (context only)")
    print(f"goal {result['goal']}: {'met' if result['goal_met'] else 'NOT met'}"
          f" (stage3: {'within' if result['stage3_within_goal'] else 'over'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps")
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE),
                        help="model, loss and optimizer settings (its datasets are not read)")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default=None,
                        help="default: the recipe's train.precision")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = parser.parse_args()
    emit(run(args), print_table, args.out)


if __name__ == "__main__":
    main()
