"""The `polyir` command: parse arguments, call one library function per command, map errors to exit codes
(0 success, 2 bad input or configuration, 1 internal error)."""

from __future__ import annotations

import errno
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from polyir.config import ENCODE_BATCH_SIZE
from polyir.errors import InputError
from polyir.guard import check_output
from polyir.translate.cli import app as translate_app

app = typer.Typer(help=__doc__.split("\n")[0], no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False)
prepare_app = typer.Typer(help="Turn raw data into train.jsonl and BEIR folders with `lang` fields.",
                          no_args_is_help=True)
app.add_typer(prepare_app, name="prepare")
data_app = typer.Typer(help="Named retrieval tasks: list the registry, download or convert a task.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(translate_app, name="translate")
console = Console(stderr=True)

DEFAULT_MODEL = "facebook/m2m100_418M"
USER_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")]


@prepare_app.command("lareqa")
def prepare_lareqa(
    src_dir: Annotated[Path, typer.Argument(help="Folder of <lang>.json files (XQuAD-R or MLQA-R).")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: train.jsonl and eval/ (a BEIR folder).")],
    holdout: Annotated[float, typer.Option(help="Share of articles held out for evaluation (1 = eval only).")],
    seed: Annotated[int, typer.Option(help="Seed of the article split.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """XQuAD-R / MLQA-R → OUT/train.jsonl (parallel examples) + OUT/eval/ (held-out articles), split by article."""
    from polyir.data import write_beir, write_train
    from polyir.data.lareqa import article_count, evaluation_task, read_lareqa, split_articles, training_examples
    from polyir.files import atomic_dir

    check_output(out_dir, [src_dir])
    by_lang = read_lareqa(src_dir)
    train, held_out = split_articles(article_count(by_lang), holdout, seed)
    with atomic_dir(out_dir, overwrite) as staging:
        if train:
            write_train(training_examples(by_lang, train), staging / "train.jsonl")
        if held_out:
            (staging / "eval").mkdir()
            write_beir(evaluation_task(by_lang, held_out), staging / "eval")
    console.print(f"{out_dir}: {len(train)} training and {len(held_out)} evaluation articles, "
                  f"{len(by_lang)} languages")


@prepare_app.command("bitext")
def prepare_bitext(
    src_dir: Annotated[Path, typer.Argument(help="Folder of line-aligned <code>.txt files (optional ids.txt).")],
    out_dir: Annotated[Path, typer.Argument(help="Output BEIR folder.")],
    pivot: Annotated[str, typer.Option(help="Language of the corpus; queries are the other languages.")],
    langs: Annotated[str | None, typer.Option(help="Comma-separated languages (default: every file).")] = None,
    pooled: Annotated[bool, typer.Option("--pooled", help="Corpus of every language instead of the pivot.")] = False,
    train: Annotated[bool, typer.Option("--train", help="Write OUT/train.jsonl (each line a parallel example) and, "
                                                        "with --holdout, OUT/eval/ from the other lines.")] = False,
    holdout: Annotated[float, typer.Option(help="With --train: share of lines held out for OUT/eval/.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the line split.")] = 0,
    overwrite: Overwrite = False,
) -> None:
    """Line-aligned translations → a BEIR folder for bitext retrieval (query in X, its translation relevant), or
    with --train parallel training examples from them (and a held-out BEIR folder)."""
    from polyir.data import write_beir, write_train
    from polyir.data.bitext import aligned_task, bitext_examples, bitext_task, read_bitext
    from polyir.data.lareqa import split_articles
    from polyir.files import atomic_dir

    check_output(out_dir, [src_dir])
    chosen = [code.strip() for code in langs.split(",") if code.strip()] if langs else None
    if train:
        ids, texts = read_bitext(src_dir, chosen)
        if pivot not in texts:
            raise InputError(f"pivot '{pivot}' is not among the languages {', '.join(texts)}", src_dir)
        kept, held_out = split_articles(len(ids), holdout, seed)
        with atomic_dir(out_dir, overwrite) as staging:
            write_train(bitext_examples(ids, texts, kept), staging / "train.jsonl")
            if held_out:
                (staging / "eval").mkdir()
                write_beir(aligned_task(ids, texts, pivot, pooled, "eval", held_out), staging / "eval")
        console.print(f"{out_dir}: {len(kept)} training and {len(held_out)} evaluation lines, {len(texts)} languages")
        return
    task = bitext_task(src_dir, pivot, chosen, pooled, name=out_dir.name)
    with atomic_dir(out_dir, overwrite) as staging:
        write_beir(task, staging)
    console.print(f"{out_dir}: {len(task.queries)} queries, {len(task.corpus)} documents, "
                  f"languages {', '.join(task.query_languages)} -> {', '.join(task.corpus_languages)}")


class _Messages(logging.Formatter):
    """polyir's log records as the CLI shows them: the message, with `warning:` / `error:` before it."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def _show_logs() -> None:
    """The library logs through `logging` (polyir.*); the command line shows its INFO and above on stderr."""
    logger = logging.getLogger("polyir")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Messages("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _quiet_libraries(quiet: bool) -> None:
    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def parse_lang_map(pairs: list[str]) -> dict[str, str | None]:
    """`swh_Latn=sw` pairs; an empty right side means no language token."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source:
            raise InputError(f"--lang-map expects CODE=MODEL_CODE (or CODE= for no language token), got '{pair}'")
        mapping[source] = target or None
    return mapping


@app.command()
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
    lang_map: Annotated[list[str] | None, typer.Option(help="Dataset code to model code, e.g. swh_Latn=sw.")] = None,
    query_prefix: Annotated[str | None, typer.Option(help="Overrides the model's query prefix.")] = None,
    passage_prefix: Annotated[str | None, typer.Option(help="Overrides the model's passage prefix.")] = None,
    max_query_length: Annotated[int | None, typer.Option(min=1)] = None,
    max_passage_length: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoding batch.")] = ENCODE_BATCH_SIZE,
    search: Annotated[str, typer.Option(help="Top-k search: exact (chunked matrix products) or faiss.")] = "exact",
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ... or auto.")] = "auto",
    dtype: Annotated[str, typer.Option(help="Weights while encoding: float32 (under bf16 autocast on CUDA) or "
                                            "bfloat16 (faster on GPUs).")] = "float32",
    overwrite: Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Zero-shot evaluation in every setting the tasks' languages allow (mono / cross / multi).

    Without --task: XQuAD-R, every article and language (LAReQA), from --data-dir or downloaded."""
    import torch

    from polyir.data import read_beir
    from polyir.evaluate import evaluate_task
    from polyir.files import atomic_dir
    from polyir.model import BiEncoder

    _quiet_libraries(quiet)
    if search not in ("exact", "faiss"):
        raise InputError(f"--search must be 'exact' or 'faiss', got '{search}'")
    if dtype not in ("float32", "bfloat16"):
        raise InputError(f"--dtype must be 'float32' or 'bfloat16', got '{dtype}'")
    inputs = [*(task or []), *([data_dir] if data_dir else []), *([Path(model)] if Path(model).exists() else [])]
    check_output(out, inputs)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}, but PyTorch sees no CUDA device here; expected cpu or auto")
    tasks = [read_beir(folder, split, lang) for folder in task] if task else [default_task(data_dir)]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise InputError(f"two tasks share a folder name ({', '.join(names)}); expected distinct names")
    overrides = {"query_prefix": query_prefix, "passage_prefix": passage_prefix,
                 "max_query_length": max_query_length, "max_passage_length": max_passage_length}
    if lang_map:
        overrides["lang_map"] = parse_lang_map(lang_map)
    if model == "bm25":
        from polyir.lexical import BM25

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


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest complete checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a bi-encoder: output_dir/ gets log.jsonl, tensorboard/, checkpoints/ and model/ (best on dev)."""
    from polyir.config import TrainConfig
    from polyir.train import TrainingDiverged
    from polyir.train import train as run_training

    _quiet_libraries(quiet)
    try:
        model = run_training(TrainConfig.load(config), resume=resume, show_progress=not quiet)
    except TrainingDiverged as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"model: {model}")


@app.command()
def compare(
    config: Annotated[Path | None, typer.Option(help="Comparison configuration (default: the embedded one).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding xquad-r/ (and flores-sib200/); default: download into the cache.")] = None,
    model: Annotated[str | None, typer.Option(help="Overrides model.name_or_path (folder, hub id, pkg:MOD).")] = None,
    output_dir: Annotated[Path | None, typer.Option(help="Overrides output_dir.")] = None,
    redo: Annotated[bool, typer.Option("--redo", help="Make again the prepared data and cells that other "
                                                      "settings or data produced (without it: exit 2).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train every cell of the grid under one budget, evaluate each zero-shot, and write output_dir/report.md,
    results.json and plots/. Cells already complete with the same settings and data are reused; a half-finished
    one resumes; one made from other settings or data stops the run (exit 2) unless --redo."""
    from importlib.resources import files

    from polyir import report
    from polyir.analysis import summarise
    from polyir.config import CompareConfig
    from polyir.experiment import run_grid

    _quiet_libraries(quiet)
    overrides = {key: value for key, value in (("model.name_or_path", model), ("output_dir", output_dir))
                 if value is not None}
    source = config or Path(str(files("polyir") / "defaults" / "compare.yaml"))
    settings = CompareConfig.load(source, **{k: str(v) for k, v in overrides.items()})
    data, results, untrained, lexical, source = run_grid(settings, data_dir, show_progress=not quiet, redo=redo)
    numbers = summarise(settings, data, results, source, untrained, lexical)
    summary = report.write(Path(settings.output_dir), settings, numbers,
                           "polyir " + " ".join(sys.argv[1:]))
    for line in summary.answer:
        print(line)
    console.print(f"report: {Path(settings.output_dir) / 'report.md'}")


DataDir = Annotated[Path | None, typer.Option(
    help="Folder holding the publishers' files as D/<task folder>/<path> (default: download into the cache).")]


@data_app.command("list")
def data_list() -> None:
    """The registry: each task's languages, size, license and where its files come from."""
    from polyir.data.registry import registry

    view = Table(title="polyir data: named tasks (NAME[:LANG,...])", show_lines=True)
    for column in ("name", "languages", "queries / documents", "license", "source"):
        view.add_column(column, overflow="fold")
    for entry in registry().values():
        langs = list(entry.languages)
        queries = [info.queries for info in entry.languages.values() if info.queries]
        docs = [info.documents for info in entry.languages.values() if info.documents]
        size = (f"{sum(queries):,} queries" if queries else "") + (f" / {sum(docs):,} documents" if docs else "")
        bases = sorted({spec.base.split("/")[2] for spec in entry.files.values() if spec.base}) or ["--data-dir only"]
        view.add_row(f"{entry.name}\n{entry.title}", f"{len(langs)}: {' '.join(langs[:24])}"
                     + (" ..." if len(langs) > 24 else ""), size, entry.license, ", ".join(bases))
    Console(width=max(160, console.width)).print(view)


@data_app.command("get")
def data_get(
    name: Annotated[list[str], typer.Argument(help="NAME or NAME:LANG[,LANG...] (see `polyir data list`).")],
    data_dir: DataDir = None,
) -> None:
    """Download (resumable, verified) or read from --data-dir, and convert to BEIR folders in the cache; prints
    each folder."""
    from polyir.data.named import named_tasks

    for spec in name:
        for named in named_tasks(spec, data_dir):
            print(f"{named.folder}\t{named.split}\t{','.join(named.langs)}")


@app.command()
def benchmark(
    out: Annotated[Path, typer.Option(help="Output folder: summary.md and <model>/metrics.json, runs/.")],
    model: Annotated[list[str], typer.Option(help="Model folder, hub id, pkg:MODULE, or bm25 (repeat).")],
    suite: Annotated[str | None, typer.Option(help="Suite name (low-resource, multilingual-qa) or YAML file.")] = None,
    task: Annotated[list[str] | None, typer.Option(help="Named task NAME[:LANG,...] (repeat; with or without "
                                                        "--suite).")] = None,
    data_dir: DataDir = None,
    fusion: Annotated[float | None, typer.Option(min=0.0, max=1.0, help=(
        "Also fuse each dense model with BM25: w x dense + (1 - w) x BM25, min-max over each top 100."))] = None,
    results: Annotated[Path | None, typer.Option(help="Results file the rows are appended to (default: "
                                                      "results.jsonl beside OUT).")] = None,
    depth: Annotated[int, typer.Option(min=0, help="Documents per query in the runs (0 = whole corpus).")] = 100,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoding batch.")] = ENCODE_BATCH_SIZE,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ... or auto.")] = "auto",
    overwrite: Overwrite = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Evaluate models on named tasks; tasks whose files are missing are skipped, with what to get."""
    import torch

    from polyir import benchmark as bench

    _quiet_libraries(quiet)
    if suite is None and not task:
        raise InputError("expected --suite NAME or --task NAME[:LANG] (see `polyir data list`)")
    specs = [*(bench.load_suite(suite).tasks if suite else []), *(task or [])]
    check_output(out, [*([data_dir] if data_dir else []), *(Path(m) for m in model if Path(m).exists())])
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}, but PyTorch sees no CUDA device here; expected cpu or auto")
    found, missing = bench.gather(specs, data_dir)
    explicit = [spec for spec in missing if spec in (task or [])]
    if explicit:
        raise InputError(f"--task {explicit[0]}: {missing[explicit[0]]}")
    if not found:
        raise InputError("no task to run: " + "; ".join(f"{s}: {m}" for s, m in missing.items()))
    entrants = bench.contenders(model, fusion, device)
    table = bench.run(entrants, found, out, results or out.parent / "results.jsonl", depth, batch_size, not quiet,
                      "polyir " + " ".join(sys.argv[1:]), overwrite)
    print(bench.summary(table))
    for spec, message in missing.items():
        console.print(f"[yellow]skipped[/yellow] {spec}: {message}; get it with `polyir data get {spec}` "
                      "online, or give --data-dir", highlight=False, soft_wrap=True)
    console.print(f"summary: {out / 'summary.md'}")


@app.command()
def results(
    file: Annotated[Path, typer.Argument(help="A results file written by polyir benchmark.")],
) -> None:
    """Print the newest row of each model and revision side by side, as markdown tables."""
    from polyir.benchmark import latest, summary

    print(summary(latest(file)))


def default_task(data_dir: Path | None):
    """All of XQuAD-R as one multilingual task, the LAReQA benchmark."""
    from polyir.data.lareqa import article_count, evaluation_task, read_lareqa
    from polyir.data.sources import locate

    by_lang = read_lareqa(locate("xquad-r", data_dir))
    return evaluation_task(by_lang, list(range(article_count(by_lang))), name="xquad-r")


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


def main() -> None:
    _show_logs()
    try:
        app(standalone_mode=True)
    except InputError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - beyond a path the user gave that cannot be written: polyir's fault
        if isinstance(error, OSError) and (isinstance(error, PermissionError) or error.errno in USER_ERRNOS):
            where = f"{error.filename}: " if error.filename else ""
            console.print(f"[red]error:[/red] {where}{error.strerror}; expected a path polyir may write",
                          highlight=False, soft_wrap=True)
            sys.exit(2)
        traceback.print_exc()
        console.print("[red]internal error[/red]: please report it with the traceback above")
        sys.exit(1)
