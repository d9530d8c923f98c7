"""`polyir benchmark`: models (dense, `bm25`, and dense + BM25 fusions) on a suite of named tasks.

Each model gets OUT/<model>/metrics.json (the `polyir evaluate` layout) and its TREC runs; OUT/summary.md has one
table per setting and metric (task x language rows, one column per model, macro averages last); every result is
appended to a results file as one JSON line keyed by model, revision and task, so the rows of models run at
other times can be printed beside each other (`polyir results FILE`)."""

from __future__ import annotations

import datetime
import json
import logging
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from statistics import fmean

from pydantic import BaseModel, ConfigDict

from polyir import __version__
from polyir.config import load_yaml, validated
from polyir.data.named import NamedTask, available_tasks
from polyir.errors import InputError
from polyir.files import append_jsonl, atomic_dir
from polyir.provenance import checksum

SUITES = Path(str(files("polyir") / "defaults" / "suites"))
SUMMARY_METRICS = ("ndcg@10", "recall@100", "map")
log = logging.getLogger(__name__)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    tasks: list[str]


def load_suite(name: str) -> Suite:
    """A shipped suite by name (defaults/suites/NAME.yaml) or a suite file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else SUITES / f"{name}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in SUITES.glob("*.yaml"))
        raise InputError(f"no suite '{name}'; expected a suite file or one of: {', '.join(shipped)}")
    return validated(Suite, load_yaml(path), path)


def gather(specs: list[str], data_dir: Path | None) -> tuple[list[NamedTask], dict[str, str]]:
    """The tasks whose files are here (or downloadable), and for the others what is missing. A spec that is a
    folder is a user's own BEIR collection, benchmarked beside the named ones."""
    from polyir.data import read_beir

    found, missing = [], {}
    for spec in specs:
        if Path(spec).is_dir():
            task = read_beir(Path(spec))
            found.append(NamedTask(spec, None, sorted({*task.query_languages, *task.corpus_languages}), Path(spec)))
            continue
        here, absent = available_tasks(spec, data_dir)
        found += here
        if absent:
            missing[spec] = "; ".join(absent)
    return found, missing


@dataclass
class Contender:
    name: str
    revision: str
    model: object


def contenders(models: list[str], fusion: float | None, device: str) -> list[Contender]:
    """`bm25` or a dense model each; with `fusion`, also each dense model fused with BM25 at that weight."""
    from polyir.evaluation.lexical import BM25, Fusion
    from polyir.models.biencoder import BiEncoder
    from polyir.models.packaged import resolve_model_path

    out, lexical = [], BM25()
    for spec in models:
        if spec == "bm25":
            out.append(Contender("bm25", lexical.revision, lexical))
            continue
        encoder = BiEncoder.from_pretrained(spec).to(device)
        resolved = Path(str(resolve_model_path(spec)))
        revision = (f"sha256:{checksum(resolved)[:16]}" if resolved.exists()
                    else getattr(encoder.backbone.config, "_commit_hash", None) or "unknown")
        out.append(Contender(spec, revision, encoder))
        if fusion is not None:
            fused = Fusion(encoder, spec, lexical, fusion)
            out.append(Contender(fused.name, f"{revision} + {lexical.revision}", fused))
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_")


def run(entrants: list[Contender], tasks: list[NamedTask], out: Path, results: Path, depth: int, batch_size: int,
        show_progress: bool, command: str, overwrite: bool = False) -> dict[str, dict[str, dict]]:
    """Evaluate every contender on every task; returns {model: {task: metrics.json entry}}."""
    from polyir.data import read_beir
    from polyir.evaluation import evaluate_embeddings
    from polyir.evaluation.harness import encode_task
    from polyir.evaluation.lexical import BM25, Fusion

    def represent(model, task, memo: dict) -> tuple:
        """Each model's representation of a task once: a fusion reuses its parts'."""
        if id(model) not in memo:
            if isinstance(model, Fusion):
                memo[id(model)] = model.combine(represent(model.dense, task, memo),
                                                represent(model.lexical, task, memo))
            elif isinstance(model, BM25):
                memo[id(model)] = model.represent(task)
            else:
                memo[id(model)] = encode_task(model, task, batch_size, show_progress)
        return memo[id(model)]

    slugs = [_slug(c.name) for c in entrants]
    if len(set(slugs)) != len(slugs):
        raise InputError(f"two models share an output folder name ({', '.join(slugs)}); expected distinct models")
    loaded = [(named, read_beir(named.folder, named.split)) for named in tasks]
    table: dict[str, dict[str, dict]] = {}
    with atomic_dir(out, overwrite) as staging:
        for _, task in loaded:
            memo: dict = {}
            for contender, slug in zip(entrants, slugs):
                log.info("%s on %s (%d queries, %d documents)", contender.name, task.name, len(task.queries),
                         len(task.corpus))
                evaluation = evaluate_embeddings(task, *represent(contender.model, task, memo), depth,
                                                 run_path=staging / slug / "runs" / f"{task.name}.trec")
                table.setdefault(contender.name, {})[task.name] = evaluation.table.as_json()
        for contender, slug in zip(entrants, slugs):
            (staging / slug).mkdir(exist_ok=True)
            (staging / slug / "metrics.json").write_text(json.dumps(table[contender.name], indent=2))
        (staging / "summary.md").write_text(summary(table, {n.folder.name: n for n, _ in loaded}, command))
    _append(results, entrants, table, {n.folder.name: n for n, _ in loaded})
    return table


def _append(results: Path, entrants: list[Contender], table: dict, named: dict[str, NamedTask]) -> None:
    """One row per model and task, all in one append (a torn last row of a killed run is cut first)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    append_jsonl(results, [{"model": contender.name, "revision": contender.revision, "task": task,
                            "languages": sorted(named[task].langs), "registry": named[task].spec,
                            "split": named[task].split, "metrics": metrics, "polyir": __version__, "date": stamp}
                           for contender in entrants for task, metrics in table[contender.name].items()])


def rows(metrics: dict) -> dict[tuple[str, str], dict[str, float]]:
    """(setting, language or pair) -> values of one task's metrics.json entry."""
    return {(setting, key): values for setting in ("mono", "cross", "multi")
            for key, values in metrics.get(setting, {}).items()}


def summary(table: dict[str, dict[str, dict]], named: dict[str, NamedTask] | None = None, command: str = "") -> str:
    """Markdown: per setting and metric, task x language rows and one column per model, macro averages last."""
    models = list(table)
    lines = ["# polyir benchmark", "", f"`{command}`" if command else "", ""]
    if named:
        lines += ["| task | registry | split | languages |", "|---|---|---|---|"]
        lines += [f"| {t} | {n.spec} | {n.split} | {', '.join(n.langs)} |" for t, n in named.items()]
        lines.append("")
    for setting in ("mono", "cross", "multi"):
        keys = list(dict.fromkeys((task, key) for model in models for task, m in table[model].items()
                                  for (s, key) in rows(m) if s == setting))
        if not keys:
            continue
        for metric in SUMMARY_METRICS:
            lines += [f"## {setting}: {metric}", "", "| task | language | " + " | ".join(models) + " |",
                      "|---|---|" + "---:|" * len(models)]

            for task, key in keys:
                values = [_cell(table, m, task, setting, key, metric) for m in models]
                lines.append(f"| {task} | {key} | " + " | ".join("" if v is None else f"{v:.3f}" for v in values)
                             + " |")
            averages = []
            for model in models:
                values = [_cell(table, model, task, setting, key, metric) for task, key in keys]
                averages.append(f"**{fmean(values):.3f}**" if None not in values else "")
            lines += ["| **macro average** | | " + " | ".join(averages) + " |", ""]
    return "\n".join(lines) + "\n"


def _cell(table: dict, model: str, task: str, setting: str, key: str, metric: str) -> float | None:
    return rows(table[model].get(task, {})).get((setting, key), {}).get(metric)


def latest(results: Path) -> dict[str, dict[str, dict]]:
    """{"model @ revision": {task: metrics}} from a results file, the newest row of each model, revision, task
    and set of languages winning (a task asked for in other languages is another row: flores-200:swh_Latn and
    flores-200:yor_Latn stand side by side)."""
    from polyir.files import read_jsonl

    table: dict[str, dict[str, dict]] = {}
    for line, row in read_jsonl(results, torn_tail=True):
        for key in ("model", "revision", "task", "metrics"):
            if key not in row:
                raise InputError(f"missing field '{key}'; expected a row written by polyir benchmark", results, line)
        table.setdefault(f"{row['model']} @ {row['revision']}", {})[_label(row)] = row["metrics"]
    return table


def _label(row: dict) -> str:
    """A row's task with its languages where they were asked for (flores-200 [eng_Latn, swh_Latn]); the task
    alone where none were named (its default set) or where its name already says its one language (miracl-sw)."""
    named = row.get("registry", "").partition(":")[2]
    if not named:
        return row["task"]
    langs = sorted(row.get("languages") or filter(None, named.split(",")))
    if len(langs) == 1 and row["task"].endswith(f"-{langs[0]}"):
        return row["task"]
    return f"{row['task']} [{', '.join(langs)}]"
