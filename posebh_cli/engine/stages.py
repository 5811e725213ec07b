"""The stage schedule as step ranges (METHOD.md §4: stages by epochs or by steps)."""

from __future__ import annotations

from dataclasses import dataclass

from posebh_cli.recipe import PARTS, StageConfig


@dataclass(frozen=True)
class StageSpan:
    index: int
    config: StageConfig
    start: int  # first global step of the stage
    end: int  # one past its last step

    @property
    def frozen_parts(self) -> tuple[str, ...]:
        return tuple(p for p in PARTS if p not in self.config.train)


def plan_stages(stages: tuple[StageConfig, ...], steps_per_epoch: int) -> list[StageSpan]:
    """Consecutive spans; an epoch-based stage lasts round(epochs x steps_per_epoch) >= 1 steps."""
    spans, start = [], 0
    for i, stage in enumerate(stages):
        length = stage.steps if stage.steps > 0 else max(1, round(stage.epochs * steps_per_epoch))
        spans.append(StageSpan(i, stage, start, start + length))
        start += length
    return spans


def stage_at(spans: list[StageSpan], step: int) -> StageSpan:
    for span in spans:
        if span.start <= step < span.end:
            return span
    return spans[-1]
