"""Options several commands take alike, typed once (what the user writes; console.py turns it into values)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ... or auto.")]
LangMap = Annotated[list[str] | None, typer.Option(help="Dataset code to model code, e.g. swh_Latn=sw.")]
DataDir = Annotated[Path | None, typer.Option(
    help="Folder holding the publishers' files as D/<task folder>/<path> (default: download into the cache).")]
