"""Options shared by several commands, defined once (Typer `Annotated` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

JsonOutput = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Overrides = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE",
                 help="Override a recipe value, e.g. --set train.batch_size=32 "
                      "or --set datasets.coco.root=/data/coco (repeatable)."),
]
RunDir = Annotated[
    Optional[Path],
    typer.Option("--run", "--run-dir", help="Run directory (default: runs/latest)."),
]
Checkpoint = Annotated[
    Optional[Path],
    typer.Option("--checkpoint", help="A model.safetensors file (its run.json sits beside it)."),
]
Device = Annotated[
    str, typer.Option("--device", help="cpu, cuda, cuda:N or auto (cuda when available)."),
]
OutDir = Annotated[Optional[Path], typer.Option("--out", help="Output folder.")]
