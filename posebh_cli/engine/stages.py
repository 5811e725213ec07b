"""The stage schedule as step ranges (METHOD.md §4: stages by epochs or by steps)."""

from __future__ import annotations

from collections.abc import Container, Sequence
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


def standing_validation(stages: Sequence[StageConfig], index: int, decoder: str,
                        validated: Container[str]) -> str | None:
    """The stage before `index` whose validation still holds at the end of stage `index`, or
    None when stage `index` must validate.

    It holds when that stage was validated and stage `index` trained nothing the decoder reads
    ("heads": backbone and keypoint heads; "prototypes": backbone, embedding head and a learning
    table). Frozen parts stay in eval mode, so their outputs are the same: METHOD.md stage 1
    (embedding head and prototypes only) would re-validate the keypoint heads to the last digit.
    """
    if index == 0:
        return None
    stage, previous = stages[index], stages[index - 1]
    if decoder == "heads":
        changed = bool({"backbone", "keypoint_heads"} & set(stage.train))
    else:
        changed = (bool({"backbone", "embedding_head"} & set(stage.train))
                   or stage.prototypes == "learn")
    return None if changed or previous.name not in validated else previous.name
