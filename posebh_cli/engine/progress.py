"""Training progress: stage, step, loss terms, samples/s, ETA.

On a terminal it is a live rich progress bar. Elsewhere (a log file, nohup, a cluster job's
stdout) a live bar cannot redraw, and rich would print it only when the run ends, so the same
facts come as one plain line every `log_every` steps, the steps metrics.csv records.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from posebh_cli.engine.trainer import TrainerHooks

SHOWN_TERMS = ("loss", "kpt", "proto", "phm", "css")


def _clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))


def plain_line(task: Task, step: int, stage: str, shown: str, speed: float) -> str:
    """'step 40/1018 keypoints loss=22.6 kpt=22.6 98 samples/s elapsed 0:00:28 ETA 0:09:14'.

    Elapsed and ETA are rich's, as the live bar shows them: the ETA follows the recent steps per
    second (-:--:-- until there are two steps to measure)."""
    return (f"step {step}/{task.total:g} {stage} {shown} {speed:.0f} samples/s "
            f"elapsed {_clock(task.elapsed)} ETA {_clock(task.time_remaining)}")


class TrainProgress:
    """Hooks for the trainer. enabled: this process reports (rank 0); log_every: the plain
    lines' step interval when the console is not a terminal."""

    def __init__(self, console: Console, enabled: bool = True, log_every: int = 20) -> None:
        self.console = console
        self.enabled = enabled
        self.live = console.is_terminal
        self.log_every = max(1, log_every)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
            disable=not (enabled and self.live), transient=False)
        self.task = None

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def hooks(self) -> TrainerHooks:
        return TrainerHooks(on_start=self._start, on_step=self._step,
                            on_validation=self._validation, on_message=self._message)

    def _start(self, start: int, total: int) -> None:
        self.task = self.progress.add_task("train", total=total, completed=start, stage="",
                                           terms="", speed="")

    def _step(self, step: int, span, terms: dict[str, float], speed: float) -> None:
        shown = " ".join(f"{k}={terms[k]:.3g}" for k in SHOWN_TERMS if k in terms)
        # The task keeps the timing (elapsed, recent speed, ETA) for the bar and the lines alike;
        # a disabled Progress still tracks its tasks.
        self.progress.update(self.task, completed=step, stage=span.config.name, terms=shown,
                             speed=f"{speed:.0f} samples/s")
        task = self.progress.tasks[0]  # the one task, added by _start
        if not self.live and self.enabled and (step % self.log_every == 0
                                               or step in (span.end, task.total)):
            self.console.print(plain_line(task, step, span.config.name, shown, speed),
                               markup=False, highlight=False, soft_wrap=True)

    def _message(self, text: str) -> None:
        # Plain text, not rich markup: "[...]" in a path, a tensor name or "posebh[tensorboard]"
        # would otherwise be read as a style tag and vanish.
        if self.enabled:
            # A log file gets each message on one line (rich wraps at 80 columns off a terminal).
            self.progress.console.print(text, markup=False, soft_wrap=not self.live)

    def _validation(self, span, results: dict[str, Any]) -> None:
        if not self.enabled or not results:
            return
        self.progress.console.print(validation_table(f"validation after stage "
                                                     f"'{span.config.name}'", results))


STRICT_PCK_KEYS = ("PCK@0.1", "PCKh@0.1")  # shown beside the protocol threshold


def _fmt(source: dict, key: str, digits: int = 3) -> str:
    return f"{source[key]:.{digits}f}" if key in source else "-"


def validation_table(title: str, results: dict[str, Any]) -> Table:
    """One row per dataset: OKS AP/AP50/AP75, or PCK/AUC/EPE for hands (AR is in the JSON).

    "PCK" is the dataset's protocol threshold (hands: PCK@0.2 of the box; MPII: PCKh@0.5);
    "PCK@0.1" the strict companion where the report has one."""
    table = Table(title=title)
    # Throughput and AR are left to the caller's summary and the JSON: more columns would not
    # fit an 80-column terminal.
    names_width = max((len(name) for name in results), default=7)
    table.add_column("dataset", no_wrap=True, min_width=names_width)
    for column in ("AP", "AP50", "AP75", "PCK", "PCK@0.1", "AUC", "EPE"):
        table.add_column(column, justify="right")
    for name, report in results.items():
        oks, pck = report.get("oks", {}), report.get("pck", {})
        strict_key = next((key for key in STRICT_PCK_KEYS if key in pck), STRICT_PCK_KEYS[0])
        # The protocol key names its threshold (e.g. "PCK@0.2", or PCKh's "PCKh@0.5").
        pck_key = next((key for key in pck if key.startswith("PCK") and key != strict_key),
                       "PCK")
        table.add_row(name, _fmt(oks, "AP"), _fmt(oks, "AP50"), _fmt(oks, "AP75"),
                      _fmt(pck, pck_key), _fmt(pck, strict_key), _fmt(pck, "AUC"),
                      _fmt(pck, "EPE", 2))
    return table
