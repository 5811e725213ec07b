"""Optional TensorBoard event files of a training run, in `<run>/tensorboard/`.

metrics.csv and run.json stay the record of a run; the events are for watching it live
(`tensorboard --logdir runs`). They are written on rank 0 when `train.tensorboard` is on and the
`tensorboard` package is installed (`pip install 'posebh[tensorboard]'`).

Tags: `train/<term>` for every logged loss term (per-head terms as `train/kpt/<dataset>`),
`train/lr`, `train/samples_per_s`; `val/<dataset>/<group>/<metric>` at stage ends
(`val/synthetic_hand/pck/PCK@0.1`, `val/coco/oks/AP`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TENSORBOARD_DIR = "tensorboard"
NOT_METRICS = frozenset({"instances", "excluded_instances", "num_predictions",
                         "num_gt_instances", "images_per_second"})


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def validation_scalars(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """{dataset: evaluation report} -> {"<dataset>/<group>/<metric>": value} for the numeric
    metrics of each report's metric groups (oks, pck, ...); counts and lists are left out."""
    scalars = {}
    for dataset, report in results.items():
        for group, values in report.items():
            if not isinstance(values, Mapping):
                continue
            for name, value in values.items():
                if (isinstance(value, (int, float)) and not isinstance(value, bool)
                        and name not in NOT_METRICS):
                    scalars[f"{dataset}/{group}/{name}"] = float(value)
    return scalars


class TensorBoardLog:
    """A SummaryWriter on `<run_dir>/tensorboard`.

    start_step: the step the run starts from (the checkpoint's on a resume). Older events of
    later steps, from a killed attempt, are purged (TensorBoard hides them), as the trainer drops
    that attempt's metrics.csv rows, so the curves do not fold back; a fresh run (0) purges all.
    """

    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # Rows up to the checkpoint's step were logged before it was saved: they stay.
        purge_step = start_step + 1 if start_step else 0
        self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge_step)

    def train(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.flush()  # a log row every few steps: cheap, and the dashboard stays current

    def validation(self, step: int, results: Mapping[str, Mapping[str, Any]]) -> None:
        for name, value in validation_scalars(results).items():
            self.writer.add_scalar(f"val/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
