"""`polyir compare`: the comparison grid, from a YAML configuration or the embedded default."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console, quiet_libraries
from polyir.cli.options import Quiet

EXAMPLE = "Example: polyir compare --config configs/quickstart.yaml --data-dir ../shared/data"


def compare(
    config: Annotated[Path | None, typer.Option(help="Comparison configuration (default: the embedded one; "
                                                     "`polyir config compare` prints every key).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding xquad-r/ (and flores-sib200/); default: download into the cache.")] = None,
    model: Annotated[str | None, typer.Option(help="Overrides model.name_or_path (folder, hub id, pkg:MOD).")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Overrides output_dir.")] = None,
    redo: Annotated[bool, typer.Option("--redo", help="Make again the prepared data and cells that other "
                                                      "settings or data produced (without it: exit 2).")] = False,
    quiet: Quiet = False,
) -> None:
    """Train every cell of the grid under one budget, evaluate each zero-shot, and write output_dir/report.md,
    results.json and plots/. Cells already complete with the same settings and data are reused; a half-finished
    one resumes; one made from other settings or data stops the run (exit 2) unless --redo."""
    from polyir.comparison import DEFAULT_CONFIG
    from polyir.comparison import compare as run_comparison
    from polyir.config import CompareConfig

    quiet_libraries(quiet)
    overrides = {key: value for key, value in (("model.name_or_path", model), ("output_dir", output_dir))
                 if value is not None}
    settings = CompareConfig.load(config or DEFAULT_CONFIG, **{k: str(v) for k, v in overrides.items()})
    summary = run_comparison(settings, data_dir, redo=redo, show_progress=not quiet,
                             command="polyir " + " ".join(sys.argv[1:]))
    for line in summary.answer:
        print(line)
    console.print(f"report: {Path(settings.output_dir) / 'report.md'}")
