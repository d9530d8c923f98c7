"""Zero-shot evaluation of a bi-encoder on a retrieval task in every setting its `lang` fields allow.

One pass of exact search per (all queries, corpus language) gives everything: per-language top-k lists (mono and
cross runs), their merge (the multi run over the pooled corpus) and exact ranks of every relevant document."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

import torch

from polyir.data.records import RetrievalTask
from polyir.evaluate.metrics import (
    LIBRARY_DEPTH,
    METRICS,
    average_precision,
    library_measures,
    rank_distance,
    relevant_ranks,
)
from polyir.evaluate.search import NO_DOC, Scored, count_above, top_k
from polyir.files import atomic_file
from polyir.model import BiEncoder

SETTINGS = ("mono", "cross", "multi")


@dataclass
class TaskEvaluation:
    """The metrics.json entry of a task and the per-query values behind it: per_query[setting][key][query id]."""

    table: dict
    per_query: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)


@dataclass
class _Scored:
    """A task after search: documents in language-group order, each query's relevant documents (positions in
    that order), and per corpus language the top-k lists and the counts of documents ranked before each
    relevant one."""

    task: RetrievalTask
    doc_ids: list[str]
    groups: dict[str, tuple[int, int]]  # corpus language -> [start, end) positions
    relevant: torch.Tensor  # (Q, R) positions, NO_DOC padding
    rel_scores: torch.Tensor  # (Q, R)
    tops: dict[str, Scored]
    above: dict[str, torch.Tensor]  # (Q, R) per corpus language

    def ranking(self, q: int, langs: list[str], depth: int) -> list[tuple[str, float]]:
        """Top documents of query q in the corpus of `langs` (merged across language groups)."""
        scores = torch.cat([self.tops[lang].top_scores[q] for lang in langs])
        index = torch.cat([self.tops[lang].top_index[q] + self.groups[lang][0] for lang in langs])
        order = scores.sort(descending=True, stable=True).indices[:depth]  # groups are in position order
        return [(self.doc_ids[i], v) for i, v in zip(index[order].tolist(), scores[order].tolist()) if v > -1e30]

    def ranks(self, q: int, langs: list[str]) -> list[int]:
        """Exact ranks, in the corpus of `langs`, of the query's relevant documents that lie in it."""
        spans = [self.groups[lang] for lang in langs]
        chosen = [j for j, position in enumerate(self.relevant[q].tolist())
                  if position != NO_DOC and any(a <= position < b for a, b in spans)]
        return relevant_ranks([float(self.rel_scores[q, j]) for j in chosen],
                              [int(self.relevant[q, j]) for j in chosen],
                              [sum(int(self.above[lang][q, j]) for lang in langs) for j in chosen])


def _search(model: BiEncoder, task: RetrievalTask, depth: int, batch_size: int, show_progress: bool) -> _Scored:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, doc in enumerate(task.corpus):
        groups[doc.lang].append(index)
    bounds, start = {}, 0
    for lang in sorted(groups):
        bounds[lang] = (start, start + len(groups[lang]))
        start += len(groups[lang])
    docs = [task.corpus[i] for lang in sorted(groups) for i in groups[lang]]
    doc_emb = model.encode([f"{d.title} {d.text}" if d.title else d.text for d in docs], [d.lang for d in docs],
                           "passage", batch_size, show_progress)
    query_emb = model.encode([q.text for q in task.queries], [q.lang for q in task.queries], "query", batch_size,
                             show_progress)
    position = {doc.id: i for i, doc in enumerate(docs)}
    judged = [[position[d] for d, grade in task.qrels.get(q.id, {}).items() if grade > 0] for q in task.queries]
    width = max(1, max(map(len, judged)))
    relevant = torch.tensor([row + [NO_DOC] * (width - len(row)) for row in judged], dtype=torch.long)
    exclude = torch.tensor([[position.get(q.id, NO_DOC)] for q in task.queries], dtype=torch.long)

    def local(index: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return torch.where((index >= a) & (index < b), index - a, NO_DOC)

    tops = {lang: top_k(query_emb, doc_emb[a:b], (b - a) if depth == 0 else max(depth, LIBRARY_DEPTH),
                        local(relevant, a, b), local(exclude, a, b)) for lang, (a, b) in bounds.items()}
    rel_scores = torch.full(relevant.shape, float("nan"))
    for found in tops.values():
        rel_scores = torch.where(found.rel_scores.isnan(), rel_scores, found.rel_scores)
    above = {lang: count_above(query_emb, doc_emb[a:b], local(relevant, a, b), local(exclude, a, b), rel_scores,
                               relevant, offset=a) for lang, (a, b) in bounds.items()}
    return _Scored(task, [d.id for d in docs], bounds, relevant, rel_scores, tops, above)


def _setting_keys(task: RetrievalTask) -> list[tuple[str, str, str, list[str]]]:
    """(setting, key, query language, corpus languages) for every setting the task's languages allow."""
    corpus_langs = task.corpus_languages
    keys = []
    for x in task.query_languages:
        keys += [("mono", x, x, [x])] if x in corpus_langs else []
        keys += [("cross", f"{x}->{y}", x, [y]) for y in corpus_langs if y != x]
        keys += [("multi", x, x, corpus_langs)] if len(corpus_langs) > 1 else []
    return keys


def evaluate_task(model: BiEncoder, task: RetrievalTask, depth: int = 1000, batch_size: int = 128,
                  settings: tuple[str, ...] = SETTINGS, run_path: Path | None = None,
                  show_progress: bool = True) -> TaskEvaluation:
    """Metrics per setting and language (or language pair) with macro-averaged summaries; with `run_path`, the
    TREC run of every query over the whole corpus at `depth` (0 = every document). Mono and cross rankings are
    this run restricted to one language's documents. A query counts in a setting when it has a relevant
    document there."""
    scored = _search(model, task, depth, batch_size, show_progress)
    doc_lang = {doc.id: doc.lang for doc in task.corpus}
    by_lang: dict[str, list[int]] = defaultdict(list)
    for q, query in enumerate(task.queries):
        by_lang[query.lang].append(q)
    result = TaskEvaluation(table={"summary": {}})
    for setting, key, x, langs in _setting_keys(task):
        if setting not in settings:
            continue
        values: dict[str, dict[str, float]] = {}
        qrels, run = {}, {}
        for q in by_lang[x]:
            query_id = task.queries[q].id
            ranks = scored.ranks(q, langs)
            if not ranks:
                continue
            values[query_id] = {"map": average_precision(ranks)}
            if setting == "multi" and len(ranks) > 1:
                values[query_id]["rank_distance"] = rank_distance(ranks)
            qrels[query_id] = {d: g for d, g in task.qrels[query_id].items() if doc_lang[d] in langs}
            run[query_id] = dict(scored.ranking(q, langs, LIBRARY_DEPTH))
        if not values:
            continue
        for query_id, measured in library_measures(qrels, run).items():
            values[query_id].update(measured)
        result.per_query.setdefault(setting, {})[key] = values
        result.table.setdefault(setting, {})[key] = _mean(values)
    for setting in SETTINGS:
        if setting in result.table:
            entries = list(result.table[setting].values())
            names = [m for m in METRICS if all(m in e for e in entries)]
            result.table["summary"][setting] = {m: fmean(e[m] for e in entries) for m in names}
    if run_path is not None:
        _write_run(scored, run_path, depth or len(task.corpus))
    return result


def _write_run(scored: _Scored, path: Path, depth: int, tag: str = "polyir") -> None:
    """TREC format `qid Q0 docid rank score tag`, written under a temporary name and renamed."""
    langs = scored.task.corpus_languages
    with atomic_file(path) as out:
        for q, query in enumerate(scored.task.queries):
            out.writelines(f"{query.id} Q0 {doc} {rank} {score:.9g} {tag}\n"
                           for rank, (doc, score) in enumerate(scored.ranking(q, langs, depth), start=1))


def _mean(values: dict[str, dict[str, float]]) -> dict[str, float]:
    names = [m for m in METRICS if any(m in v for v in values.values())]
    entry = {m: fmean(v[m] for v in values.values() if m in v) for m in names}
    entry["n"] = len(values)
    return entry
