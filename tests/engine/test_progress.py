"""Training progress off a terminal: one plain line per `log_every` steps (and at stage ends),
with stage, loss terms, samples/s, elapsed time and ETA; no live bar to redraw."""

from __future__ import annotations

import io
import re

from rich.console import Console

from posebh_cli.engine.progress import TrainProgress
from posebh_cli.engine.stages import StageSpan
from posebh_cli.recipe import StageConfig

LINE = re.compile(r"^step (\d+)/(\d+) (\w+) loss=([\d.]+) kpt=([\d.]+) (\d+) samples/s "
                  r"elapsed \d+:\d\d:\d\d ETA (\d+:\d\d:\d\d|-:--:--)$")


def _run(console: Console, steps: range, log_every: int) -> None:
    span = StageSpan(0, StageConfig("keypoints", steps=5), start=0, end=5)
    progress = TrainProgress(console, log_every=log_every)
    hooks = progress.hooks()
    with progress:
        hooks.on_start(steps.start - 1, 7)
        for step in steps:
            stage = span if step <= 5 else StageSpan(1, StageConfig("css", steps=2), 5, 7)
            hooks.on_step(step, stage, {"loss": 2.5, "kpt": 2.0, "lr": 1e-3}, 64.0)
        hooks.on_message("a message with [brackets] longer than eighty columns, kept on one "
                         "line in a log file")


def test_plain_lines_every_log_every_steps_and_at_stage_ends():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=False, width=80), range(1, 8), log_every=2)
    lines = out.getvalue().splitlines()
    matches = [LINE.match(line) for line in lines[:-1]]
    assert all(matches), lines
    # every 2nd step, plus step 5 (end of the first stage) and step 7 (the last)
    assert [int(m[1]) for m in matches] == [2, 4, 5, 6, 7]
    assert {int(m[2]) for m in matches} == {7}
    assert [m[3] for m in matches] == ["keypoints"] * 3 + ["css"] * 2
    assert matches[0][4] == "2.5" and matches[0][5] == "2" and matches[0][6] == "64"
    assert lines[-1].startswith("a message with [brackets]") and lines[-1].endswith("log file")
    assert lines[-2].endswith("ETA 0:00:00")  # the last step: nothing remains


def test_resumed_run_counts_its_own_steps():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=False, width=200), range(5, 8), log_every=1)
    steps = [int(LINE.match(line)[1]) for line in out.getvalue().splitlines()[:-1]]
    assert steps == [5, 6, 7]


def test_terminal_gets_the_live_bar_not_lines():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=True, width=200), range(1, 8), log_every=1)
    text = out.getvalue()
    assert not re.search(r"^step \d+/7 ", text, flags=re.M)
    assert "7/7" in text  # the bar's final state
