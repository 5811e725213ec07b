"""The benchmarks' common ending: print the table, write the JSON when asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from posebh_cli.io.atomic import atomic_write_json


def emit(result: dict, print_table: Callable[[dict], None], out: Path | None) -> None:
    """Print `result` with `print_table`; write it atomically to `out` (if given) as JSON."""
    print_table(result)
    if out:
        atomic_write_json(out, result)
        print(f"wrote {out}")
