"""Zero-shot evaluation of a bi-encoder on a retrieval task in every setting its `lang` fields allow.

Search runs once per corpus language over all queries: it gives each language's top-k lists (mono and cross
runs), their merge (the multi run over the pooled corpus), and the exact rank of every relevant document."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

import torch

from polyir.config import ENCODE_BATCH_SIZE
from polyir.data.records import RetrievalTask
from polyir.distributed import SINGLE, World
from polyir.errors import InputError, ModelError
from polyir.evaluation.metrics import METRICS, average_precision, measures_at_cuts, rank_distance, relevant_ranks
from polyir.evaluation.search import NO_DOC, Scored, count_above, finite, top_k, top_k_faiss
from polyir.files import atomic_file
from polyir.models.biencoder import BiEncoder
from polyir.results import SETTINGS, TaskEvaluation


@dataclass
class _Searched:
    """A task after search: documents in language-group order, each query's relevant documents (positions in
    that order), and per corpus language the top-k lists and the counts of documents ranked before each
    relevant one."""

    task: RetrievalTask
    doc_ids: list[str]
    groups: dict[str, tuple[int, int]]  # corpus language -> [start, end) positions
    relevant: torch.Tensor  # (Q, R) positions, NO_DOC padding
    grades: torch.Tensor  # (Q, R) their relevance grades
    rel_scores: torch.Tensor  # (Q, R)
    tops: dict[str, Scored]
    above: dict[str, torch.Tensor]  # (Q, R) per corpus language

    def ranking(self, rows: torch.Tensor, langs: list[str], depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, positions) of the top documents of queries `rows` in the corpus of `langs`."""
        scores = torch.cat([self.tops[lang].top_scores[rows] for lang in langs], 1)
        index = torch.cat([self.tops[lang].top_index[rows] + self.groups[lang][0] for lang in langs], 1)
        order = scores.sort(dim=1, descending=True, stable=True).indices[:, :depth]  # groups are in position order
        return scores.gather(1, order), index.gather(1, order)

    def ranks(self, rows: torch.Tensor, langs: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Exact ranks, in the corpus of `langs`, of the relevant documents that lie in it (best first), which
        entries are real, and their grades."""
        relevant = self.relevant[rows]
        inside = torch.zeros(relevant.shape, dtype=torch.bool)
        for lang in langs:
            a, b = self.groups[lang]
            inside |= (relevant >= a) & (relevant < b)
        above = sum(self.above[lang][rows] for lang in langs)
        ranks, valid, order = relevant_ranks(self.rel_scores[rows], relevant, above, inside)
        return ranks, valid, self.grades[rows].gather(1, order)


def encode_task(model: BiEncoder, task: RetrievalTask, batch_size: int = ENCODE_BATCH_SIZE, show_progress: bool = True,
                world: World = SINGLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and document embeddings, in the task's order (a title is joined to its text, as BEIR does).
    Under data parallelism each rank encodes every size-th text and all ranks receive all embeddings."""
    docs, queries = task.corpus, task.queries

    def encode(texts: list[str], langs: list[str], kind: str) -> torch.Tensor:
        mine = model.encode(texts[world.rank::world.size], langs[world.rank::world.size], kind, batch_size,
                            show_progress)
        if not world.distributed:
            return mine
        gathered, _ = world.gather(mine.to(world.device), differentiable=False)
        order = torch.cat([torch.arange(r, len(texts), world.size) for r in range(world.size)])
        out = torch.empty(len(texts), mine.shape[1])
        out[order] = gathered.cpu()
        return out

    doc_emb = encode([f"{d.title} {d.text}" if d.title else d.text for d in docs], [d.lang for d in docs], "passage")
    query_emb = encode([q.text for q in queries], [q.lang for q in queries], "query")
    return query_emb, doc_emb


def _search(task: RetrievalTask, query_emb: torch.Tensor, doc_emb: torch.Tensor, depth: int,
            chunks: tuple[int, int], backend: str) -> _Searched:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, doc in enumerate(task.corpus):
        groups[doc.lang].append(index)
    order = [i for lang in sorted(groups) for i in groups[lang]]
    bounds, start = {}, 0
    for lang in sorted(groups):
        bounds[lang] = (start, start + len(groups[lang]))
        start += len(groups[lang])
    docs, doc_emb = [task.corpus[i] for i in order], doc_emb[order]
    position = {doc.id: i for i, doc in enumerate(docs)}
    judged = [[(position[d], grade) for d, grade in task.qrels.get(q.id, {}).items() if grade > 0]
              for q in task.queries]
    width = max(1, max(map(len, judged)))
    padded = [row + [(NO_DOC, 0)] * (width - len(row)) for row in judged]
    relevant = torch.tensor([[p for p, _ in row] for row in padded], dtype=torch.long)
    grades = torch.tensor([[g for _, g in row] for row in padded], dtype=torch.float64)
    exclude = torch.tensor([[position.get(q.id, NO_DOC)] for q in task.queries], dtype=torch.long)

    def local(index: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return torch.where((index >= a) & (index < b), index - a, NO_DOC)

    def best(a: int, b: int) -> Scored:
        k = (b - a) if depth == 0 else depth
        if backend == "faiss":
            return top_k_faiss(query_emb, doc_emb[a:b], k, local(relevant, a, b), local(exclude, a, b))
        return top_k(query_emb, doc_emb[a:b], k, local(relevant, a, b), local(exclude, a, b), *chunks)

    tops = {lang: best(a, b) for lang, (a, b) in bounds.items()}
    rel_scores = torch.full(relevant.shape, float("nan"))
    for found in tops.values():
        rel_scores = torch.where(found.rel_scores.isnan(), rel_scores, found.rel_scores)
    above = {lang: count_above(query_emb, doc_emb[a:b], local(relevant, a, b), local(exclude, a, b), rel_scores,
                               relevant, a, *chunks) for lang, (a, b) in bounds.items()}
    return _Searched(task, [d.id for d in docs], bounds, relevant, grades, rel_scores, tops, above)


def _setting_keys(task: RetrievalTask) -> list[tuple[str, str, str, list[str]]]:
    """(setting, key, query language, corpus languages) for every setting the task's languages allow."""
    corpus_langs = task.corpus_languages
    keys = []
    for x in task.query_languages:
        keys += [("mono", x, x, [x])] if x in corpus_langs else []
        keys += [("cross", f"{x}->{y}", x, [y]) for y in corpus_langs if y != x]
        keys += [("multi", x, x, corpus_langs)] if len(corpus_langs) > 1 else []
    return keys


def check_metric(tasks: list[RetrievalTask], metric: str, key: str = "eval.metric") -> None:
    """A SETTING/METRIC every task can give, before any work: a setting a task's languages do not allow would
    leave no score to follow (and no model kept)."""
    setting = metric.split("/")[0]
    for task in tasks:
        allowed = sorted({found for found, *_ in _setting_keys(task)})
        if setting not in allowed:
            raise InputError(f"{key} {metric} needs the {setting} setting, which dev task {task.name} (queries in "
                             f"{', '.join(task.query_languages)}; corpus in {', '.join(task.corpus_languages)}) "
                             f"cannot give; expected a setting among {', '.join(allowed) or 'none'}")


def evaluate_task(model, task: RetrievalTask, depth: int = 1000, batch_size: int = ENCODE_BATCH_SIZE,
                  settings: tuple[str, ...] = SETTINGS, run_path: Path | None = None,
                  show_progress: bool = True, world: World = SINGLE, backend: str = "exact") -> TaskEvaluation:
    """Encode the task with `model` (sharded across the ranks of `world`), then evaluate_embeddings(). A model
    that is not a BiEncoder (BM25, a fusion: polyir.evaluation.lexical) gives its own `represent(task)`."""
    if isinstance(model, BiEncoder):
        embeddings = encode_task(model, task, batch_size, show_progress, world)
        name = model.backbone.config.name_or_path
    else:
        embeddings, name = model.represent(task, show_progress=show_progress), model.name
    for kind, values in zip(("query", "document"), embeddings):
        if not finite(values):
            raise ModelError(f"model {name} gave non-finite {kind} representations (NaN or infinity) on task "
                             f"{task.name}: no ranking, and no metric, can be made of them")
    return evaluate_embeddings(task, *embeddings, depth, settings, run_path, backend=backend)


def evaluate_embeddings(task: RetrievalTask, query_emb: torch.Tensor, doc_emb: torch.Tensor, depth: int = 1000,
                        settings: tuple[str, ...] = SETTINGS, run_path: Path | None = None,
                        chunks: tuple[int, int] = (1024, 16384), backend: str = "exact") -> TaskEvaluation:
    """Metrics per setting and language (or language pair) with macro-averaged summaries; with `run_path`, the
    TREC run of every query over the whole corpus at `depth` (0 = every document). Mono and cross rankings are
    this run restricted to one language's documents. A query counts in a setting when it has a relevant
    document there. `chunks`: (queries, documents) scored at once, which bounds search memory; `backend`
    "faiss" takes the top-k lists from FAISS (the ranks behind map and rank_distance stay exact)."""
    if backend == "faiss" and not isinstance(query_emb, torch.Tensor):
        raise InputError("--search faiss needs dense embeddings; BM25 and fusion are searched exactly")
    searched = _search(task, query_emb, doc_emb, depth, chunks, backend)
    by_lang: dict[str, list[int]] = defaultdict(list)
    for q, query in enumerate(task.queries):
        by_lang[query.lang].append(q)
    result = TaskEvaluation()
    for setting, key, x, langs in _setting_keys(task):
        if setting not in settings:
            continue
        rows = torch.tensor(by_lang[x])
        ranks, valid, grades = searched.ranks(rows, langs)
        keep = valid[:, 0]  # queries with a relevant document in this corpus
        if not keep.any():
            continue
        rows, ranks, valid, grades = rows[keep], ranks[keep], valid[keep], grades[keep]
        ids = [task.queries[q].id for q in rows.tolist()]
        measured = {"map": average_precision(ranks, valid), **measures_at_cuts(ranks, valid, grades)}
        columns = {name: column.tolist() for name, column in measured.items()}
        values = {qid: {name: column[i] for name, column in columns.items()} for i, qid in enumerate(ids)}
        if setting == "multi":
            several = valid.sum(1) > 1
            for qid, distance, counts in zip(ids, rank_distance(ranks, valid).tolist(), several.tolist()):
                if counts:
                    values[qid]["rank_distance"] = distance
        result.per_query.setdefault(setting, {})[key] = values
        result.table.setting(setting)[key] = _mean(values)
    for setting in result.table.settings:
        entries = list(result.table.setting(setting).values())
        names = [m for m in METRICS if all(m in e for e in entries)]
        result.table.summary[setting] = {m: fmean(e[m] for e in entries) for m in names}
    if run_path is not None:
        _write_run(searched, run_path, depth or len(task.corpus))
    return result


def _mean(values: dict[str, dict[str, float]]) -> dict[str, float]:
    names = [m for m in METRICS if any(m in v for v in values.values())]
    entry = {m: fmean(v[m] for v in values.values() if m in v) for m in names}
    entry["n"] = len(values)
    return entry


def _write_run(searched: _Searched, path: Path, depth: int, tag: str = "polyir", chunk: int = 256) -> None:
    """TREC format `qid Q0 docid rank score tag` over the whole corpus, written under a temporary name."""
    langs = searched.task.corpus_languages
    with atomic_file(path) as out:
        for start in range(0, len(searched.task.queries), chunk):
            rows = torch.arange(start, min(start + chunk, len(searched.task.queries)))
            scores, index = searched.ranking(rows, langs, depth)
            for q, positions, values in zip(rows.tolist(), index.tolist(), scores.tolist()):
                query_id = searched.task.queries[q].id
                out.writelines(f"{query_id} Q0 {searched.doc_ids[i]} {rank} {s:.9g} {tag}\n"
                               for rank, (i, s) in enumerate(zip(positions, values), start=1) if s > -1e30)
