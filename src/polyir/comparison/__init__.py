"""The comparison: a grid of training recipes under one budget, evaluated zero-shot, read into an answer.

`compare` is the whole stage (grid.py trains and tests the cells, analysis.py turns their runs into numbers,
answer.py into sentences, report.py into report.md, results.json and plots)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_CONFIG = Path(str(files("polyir") / "defaults" / "compare.yaml"))


def compare(config=None, data_dir: str | Path | None = None, *, redo: bool = False, show_progress: bool = True,
            command: str = "polyir.compare()"):
    """Train every cell of the grid, evaluate each zero-shot and write output_dir/report.md, results.json and
    plots/; returns the report's numbers (an analysis.Summary, whose `answer` is the answer in sentences).

    `config`: a CompareConfig, or a YAML file (default: the embedded comparison). Cells already complete with the
    same settings and data are reused, a half-finished one resumes, one made from other settings or data is an
    InputError unless `redo`."""
    from polyir.comparison import report
    from polyir.comparison.analysis import summarise
    from polyir.comparison.grid import run_grid
    from polyir.config import CompareConfig

    settings = config if isinstance(config, CompareConfig) else CompareConfig.load(config or DEFAULT_CONFIG)
    data, results, untrained, lexical, source, interpolated = run_grid(settings, data_dir,
                                                                       show_progress=show_progress, redo=redo)
    numbers = summarise(settings, data, results, source, untrained, lexical, interpolated)
    return report.write(Path(settings.output_dir), settings, numbers, command)
