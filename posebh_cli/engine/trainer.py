"""The training loop: stages, mixed precision, checkpoints, resume, validation, logging.

The loop owns no maths: losses come from engine/train_step.py, the schedule from
engine/stages.py and engine/optim.py, data from posebh_cli/data. A resumed run replays the
identical data order (the sampler position is a function of the step), LR and RNG state.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from posebh_cli.engine import run_dir as rd
from posebh_cli.engine.distributed import DistInfo, average_gradients
from posebh_cli.engine.evaluate import AUTOCAST
from posebh_cli.engine.optim import LearningRateSchedule, apply_lr, build_optimizer
from posebh_cli.engine.stages import StageSpan, plan_stages, stage_at, standing_validation
from posebh_cli.engine.train_step import StepSettings, compute_losses
from posebh_cli.errors import PosebhError
from posebh_cli.io import checkpoint as ckpt
from posebh_cli.io.atomic import atomic_write_text
from posebh_cli.models.posebh import group_samples_by_dataset
from posebh_cli.recipe import Recipe


class TrainingDiverged(PosebhError):
    """A non-finite loss: the run stops; the last good checkpoint stays on disk."""


@dataclass
class TrainerHooks:
    """Callbacks for the CLI's progress display (all optional)."""

    on_start: Callable[[int, int], None] = lambda start, total: None
    on_step: Callable[[int, StageSpan, dict[str, float], float], None] = (
        lambda step, span, terms, samples_per_s: None)
    on_validation: Callable[[StageSpan, dict[str, Any]], None] = lambda span, metrics: None
    on_message: Callable[[str], None] = lambda text: None


@dataclass
class TrainState:
    step: int = 0
    validation: dict[str, Any] = field(default_factory=dict)


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: Path, device: torch.device, dist: DistInfo,
                 *, max_steps: int | None = None, hooks: TrainerHooks | None = None,
                 validate: bool = True, resuming: bool = False) -> None:
        from posebh_cli.data.image_cache import ImageCache
        from posebh_cli.data.sampler import MixtureSampler
        from posebh_cli.data.topdown_dataset import MixedPoseDataset, collate_pose_batch
        from posebh_cli.engine.build import build_recipe_model, build_split, type_table_of

        self.recipe, self.run_dir, self.device, self.dist = recipe, Path(run_dir), device, dist
        self.hooks = hooks or TrainerHooks()
        self.validate_at_stage_end = validate
        self.types = type_table_of(recipe)
        self.model = build_recipe_model(recipe, self.types).to(device)
        self.tensorboard = None  # a TensorBoardLog while run() runs, on rank 0
        # A resumed run takes every weight from its trainer state: reading model.pretrained or
        # init_from first would cost a load (and print a report) for tensors about to be replaced.
        if recipe.model.pretrained and not resuming:
            from posebh_cli.models.vit_weights import load_backbone_weights

            report = load_backbone_weights(self.model.backbone, recipe.model.pretrained)
            if dist.is_main:
                self.hooks.on_message(report.summary(recipe.model.pretrained))
        if recipe.model.init_from and not resuming:
            from posebh_cli.engine.init_from_run import init_from_run

            report = init_from_run(self.model, self.types, recipe.model.init_from)
            if dist.is_main:
                self.hooks.on_message(report.summary())
        if recipe.train.compile:
            # In place, so parameter names (and checkpoints) do not change. The backbone sees
            # one batch shape per run; the heads see a different per-dataset count every step,
            # so they stay eager. On the 2-core CPU it measured slower (fwd+bwd 405 -> 490 ms).
            self.model.backbone.compile()
        cache = (ImageCache(int(recipe.train.image_cache_gb * 2**30))
                 if recipe.train.cache_images else None)
        self.image_cache = cache
        self.splits = [build_split(recipe, self.types, d, "train", train=True, image_cache=cache)
                       for d in recipe.datasets]
        for split in self.splits:
            if len(split.table) == 0:
                raise PosebhError(f"dataset '{split.config.name}': the train split has no "
                                  "usable instance (labelled keypoints and a valid box)")
        batch = recipe.train.batch_size
        ratios = None if recipe.datasets[0].ratio is None else [d.ratio for d in recipe.datasets]
        self.sampler = MixtureSampler([len(s.table) for s in self.splits], batch, ratios,
                                      seed=recipe.seed, rank=dist.rank,
                                      world_size=dist.world_size, yield_seeds=True)
        self.steps_per_epoch = len(self.sampler) // batch
        self.loader = torch.utils.data.DataLoader(
            MixedPoseDataset([s.dataset for s in self.splits]), batch_size=batch,
            sampler=self.sampler, num_workers=recipe.train.workers,
            collate_fn=collate_pose_batch, persistent_workers=recipe.train.workers > 0,
            pin_memory=device.type == "cuda", drop_last=True,
            # Its own generator: each new iterator draws a worker base seed, and drawing it from
            # the global RNG would shift drop-path masks after a resume (a new iterator there).
            generator=torch.Generator().manual_seed(recipe.seed))
        self.spans = plan_stages(recipe.stages, self.steps_per_epoch)
        self.total_steps = self.spans[-1].end
        self.stop_at = min(self.total_steps, max_steps) if max_steps else self.total_steps
        depth = len(self.model.backbone.blocks)
        self.optimizer = build_optimizer(self.model, recipe.optimizer, depth)
        self.schedule = LearningRateSchedule.from_config(recipe.optimizer)
        self.autocast_dtype = AUTOCAST[recipe.train.precision]
        if self.autocast_dtype is torch.float16 and device.type != "cuda":
            raise PosebhError("train.precision = 'fp16' needs a CUDA device; use 'bf16' on CPU")
        self.scaler = torch.amp.GradScaler(device.type,
                                           enabled=self.autocast_dtype is torch.float16)
        self.state = TrainState()

    # ----- persistence -----
    def run_info(self, span: StageSpan) -> dict[str, Any]:
        from posebh_cli import __version__
        from posebh_cli.engine.provenance import git_sha

        return {
            "recipe": self.recipe.name,
            "version": __version__,
            "git_sha": git_sha(),
            "step": self.state.step,
            "total_steps": self.total_steps,
            "stage": span.config.name,
            "steps_per_epoch": self.steps_per_epoch,
            "model": {"backbone": self.recipe.model.backbone,
                      "depth": len(self.model.backbone.blocks),
                      "input_size": list(self.recipe.model.input_size),
                      "heatmap_size": list(self.recipe.model.heatmap_size)},
            "datasets": [{"name": d.name, "skeleton": d.skeleton, "encoding": d.encoding,
                          "num_keypoints": s.num_keypoints, "head": f"heads.{d.name}"}
                         for d, s in zip(self.recipe.datasets, self.types.skeletons)],
            "keypoint_types": self.types.to_dict(),
            "prototypes": None if self.model.prototype_table is None else {
                "shape": list(self.model.prototype_table.prototypes.shape),
                "tensor": "prototype_table.prototypes"},
            "validation": self.state.validation,
        }

    def save_checkpoint(self, span: StageSpan) -> None:
        if not self.dist.is_main:
            return
        # The trainer state is the whole resume point, weights included: the three files are
        # replaced one by one, so a SIGKILL between two renames leaves a mixed set, and only a
        # self-contained trainer_state.pt resumes exactly from any such moment.
        state = {
            "step": self.state.step,
            "model": {name: tensor.detach().cpu().clone()
                      for name, tensor in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "validation": self.state.validation,
        }
        ckpt.save_trainer_state(self.run_dir / rd.TRAINER_STATE_FILE, state)
        ckpt.save_weights(self.run_dir / rd.WEIGHTS_FILE, self.model)
        ckpt.save_run_info(self.run_dir / rd.RUN_INFO_FILE, self.run_info(span))

    def resume(self) -> None:
        state = ckpt.load_trainer_state(self.run_dir / rd.TRAINER_STATE_FILE)
        # Weights from the trainer state, not model.safetensors: that file may already hold the
        # next checkpoint when the run was killed while saving it.
        try:
            self.model.load_state_dict(state["model"], strict=True)
        except (KeyError, RuntimeError) as error:
            raise PosebhError(f"{self.run_dir}: the saved weights do not match this recipe's "
                              f"model ({str(error).splitlines()[0]}); resume with the recipe "
                              "of that run") from None
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as error:
            raise PosebhError(f"{self.run_dir}: the saved optimizer does not match this recipe's "
                              f"model ({error}); resume with the recipe of that run") from None
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.state = TrainState(int(state["step"]), dict(state.get("validation", {})))
        self._truncate_metrics(self.state.step)
        if self.dist.is_main:
            stage = stage_at(self.spans, self.state.step).config.name
            self.hooks.on_message(f"resuming at step {self.state.step} of {self.total_steps} "
                                  f"(stage '{stage}') from the last checkpoint")

    def _truncate_metrics(self, step: int) -> None:
        # Rows logged after the checkpoint belong to the killed attempt: drop them.
        path = self.run_dir / rd.METRICS_FILE
        if not self.dist.is_main or not path.is_file():
            return
        rows = path.read_text().splitlines()
        kept = [rows[0]] + [r for r in rows[1:] if int(r.split(",", 1)[0]) <= step]
        atomic_write_text(path, "\n".join(kept) + "\n")

    def _log_row(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        path = self.run_dir / rd.METRICS_FILE
        header: list[str] = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
        new_columns = [key for key in row if key not in header]
        buffer = io.StringIO()
        if header and new_columns:
            # A later stage logs terms the first did not (CSS): widen the header, keep the rows.
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            writer = csv.DictWriter(buffer, fieldnames=header + new_columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
            writer.writerow(row)
            atomic_write_text(path, buffer.getvalue())
            return
        writer = csv.DictWriter(buffer, fieldnames=header or list(row), restval="")
        if not header:
            writer.writeheader()
        writer.writerow(row)
        with open(path, "a", encoding="utf-8") as handle:  # append-only log, rows are whole lines
            handle.write(buffer.getvalue())

    # ----- the loop -----
    def _batches(self, start_step: int):
        epoch, offset = divmod(start_step, self.steps_per_epoch)
        batch = self.recipe.train.batch_size
        while True:
            self.sampler.set_epoch(epoch)
            self.sampler.consumed = offset * batch  # resume mid-epoch at the exact sample
            yield from self.loader
            epoch, offset = epoch + 1, 0

    def _enter_stage(self, span: StageSpan) -> None:
        self.model.set_frozen(span.frozen_parts)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.settings = StepSettings(span.config, self.recipe.loss, self.recipe.prototypes,
                                     self.recipe.loss_weights())
        self.hooks.on_message(f"stage '{span.config.name}' (steps {span.start}-{span.end - 1}): "
                              f"training {', '.join(span.config.train) or 'nothing'}; prototypes "
                              f"{span.config.prototypes}; CSS {'on' if span.config.css else 'off'}")

    def train_step(self, batch: dict[str, torch.Tensor], span: StageSpan) -> dict[str, float]:
        from posebh_cli.data.transforms import normalize_images

        step = self.state.step
        epoch = step / self.steps_per_epoch
        lr = self.schedule.lr(step, epoch, span.config.lr_scale)
        apply_lr(self.optimizer, lr)
        groups = group_samples_by_dataset(batch["dataset_idx"], len(self.splits))
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        images = normalize_images(batch["image"])
        output = compute_losses(self.model, images, batch, groups, self.settings,
                                autocast_dtype=self.autocast_dtype,
                                sinkhorn_seed=self.recipe.seed * 1_000_003 + step)
        terms = {k: float(v) for k, v in output.terms.items()}  # one sync per step, for logging
        if not all(math.isfinite(v) for v in terms.values()):
            detail = ", ".join(f"{k}={v:.4g}" for k, v in sorted(terms.items()))
            raise TrainingDiverged(f"non-finite loss at step {step} ({detail}); the last good "
                                   f"checkpoint in {self.run_dir} is kept (lower the LR, or "
                                   "use train.precision = 'fp32')")
        self.optimizer.zero_grad(set_to_none=True)
        if not output.loss.requires_grad:
            # A stage that trains no part (prototype learning only): nothing to step.
            if output.new_prototypes is not None:
                self.model.prototype_table.prototypes.copy_(output.new_prototypes)
            terms["lr"] = lr
            return terms
        self.scaler.scale(output.loss).backward()
        average_gradients(self.trainable, self.dist.world_size)
        self.scaler.unscale_(self.optimizer)
        if self.recipe.optimizer.grad_clip > 0 and self.trainable:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.recipe.optimizer.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if output.new_prototypes is not None:
            # Every rank computed the same table (sums all-reduced inside the update).
            self.model.prototype_table.prototypes.copy_(output.new_prototypes)
        terms["lr"] = lr
        return terms

    def run(self) -> TrainState:
        start = self.state.step
        if start >= self.stop_at:
            self.hooks.on_message(f"nothing to do: the run is at step {start} of {self.stop_at}")
            return self.state
        self.tensorboard = self._open_tensorboard(start)
        try:
            return self._run(start)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
                self.tensorboard = None

    def _open_tensorboard(self, start: int):
        from posebh_cli.engine.tensorboard_log import (
            TENSORBOARD_DIR,
            TensorBoardLog,
            tensorboard_installed,
        )

        if not (self.dist.is_main and self.recipe.train.tensorboard):
            return None
        if not tensorboard_installed():
            self.hooks.on_message("TensorBoard events: off (the tensorboard package is not "
                                  "installed: pip install 'posebh[tensorboard]')")
            return None
        self.hooks.on_message(f"TensorBoard events: {self.run_dir / TENSORBOARD_DIR}")
        return TensorBoardLog(self.run_dir, start_step=start)

    def _run(self, start: int) -> TrainState:
        self.hooks.on_start(start, self.stop_at)
        span = stage_at(self.spans, start)
        self._enter_stage(span)
        self.model.train()
        batch_size = self.recipe.train.batch_size * self.dist.world_size
        tick, tick_step = time.perf_counter(), start
        every = self.recipe.train.checkpoint_every
        for batch in self._batches(start):
            new_span = stage_at(self.spans, self.state.step)
            if new_span.index != span.index:
                span = new_span
                self._enter_stage(span)
            terms = self.train_step(batch, span)
            self.state.step += 1
            step = self.state.step
            elapsed = time.perf_counter() - tick
            speed = (step - tick_step) * batch_size / max(elapsed, 1e-9)
            self.hooks.on_step(step, span, terms, speed)
            if step % self.recipe.train.log_every == 0 or step == self.stop_at:
                self._log_row({"step": step, "stage": span.config.name,
                               "epoch": f"{step / self.steps_per_epoch:.4f}",
                               "lr": f"{terms['lr']:.6g}", "samples_per_s": f"{speed:.1f}",
                               **{k: f"{v:.6g}" for k, v in sorted(terms.items()) if k != "lr"}})
                if self.tensorboard is not None:
                    self.tensorboard.train(step, {**terms, "samples_per_s": speed})
                tick, tick_step = time.perf_counter(), step
            stage_done = step == span.end
            if stage_done or (every and step % every == 0) or step == self.stop_at:
                if stage_done and self.validate_at_stage_end:
                    self.validate(span)
                self.save_checkpoint(span)
            if step >= self.stop_at:
                break
        return self.state

    def validate(self, span: StageSpan) -> None:
        from posebh_cli.engine.evaluate import evaluate_recipe_dataset

        previous = standing_validation([s.config for s in self.spans], span.index,
                                       self.recipe.eval.decoder, self.state.validation)
        if previous is not None:
            self.hooks.on_message(f"validation after stage '{span.config.name}' skipped: what the "
                                  f"{self.recipe.eval.decoder} decoder reads did not train; the "
                                  f"results after stage '{previous}' stand")
            self.state.validation[span.config.name] = self.state.validation[previous]
            self._log_validation(self.state.validation[previous])
            return
        results = {}
        was_training = self.model.training
        self.model.eval()
        for split in self.splits:
            dataset = split.config
            if getattr(dataset, self.recipe.eval.split, None) is None:
                continue
            if self.dist.is_main:
                results[dataset.name] = evaluate_recipe_dataset(
                    self.model, self.recipe, self.types, dataset, self.recipe.eval.split,
                    device=self.device, image_cache=self.image_cache)
        self.model.train(was_training)
        self.state.validation[span.config.name] = results
        self.hooks.on_validation(span, results)
        self._log_validation(results)

    def _log_validation(self, results: dict[str, Any]) -> None:
        if self.tensorboard is not None:
            self.tensorboard.validation(self.state.step, results)
