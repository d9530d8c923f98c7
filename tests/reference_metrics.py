"""An independent scorer for the tests: every metric polyir writes, computed by brute force from a ranked list
of document ids (a run file's order) and the judgements, straight from the definitions."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from statistics import fmean


def read_run(path: Path) -> dict[str, list[str]]:
    """{query: document ids in rank order}, checking that the rank column counts 1, 2, 3 ..."""
    ranking: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        qid, _, doc, rank, _score, _tag = line.split()
        ranking[qid].append(doc)
        assert int(rank) == len(ranking[qid]), line
    return ranking


def measures(ranked: list[str], grades: dict[str, int]) -> dict[str, float]:
    """One query's metrics over a complete ranking; `grades`: its judged documents (grade > 0 is relevant)."""
    relevant = {doc: grade for doc, grade in grades.items() if grade > 0}
    ranks = [rank for rank, doc in enumerate(ranked, start=1) if doc in relevant]
    assert len(ranks) == len(relevant), "a complete ranking holds every relevant document"
    dcg = sum(relevant[doc] / math.log2(rank + 1) for rank, doc in enumerate(ranked[:10], start=1) if doc in relevant)
    ideal = sum(grade / math.log2(rank + 1)
                for rank, grade in enumerate(sorted(relevant.values(), reverse=True)[:10], start=1))
    values = {"map": fmean(i / rank for i, rank in enumerate(ranks, start=1)), "ndcg@10": dcg / ideal,
              **{f"recall@{k}": sum(rank <= k for rank in ranks) / len(ranks) for k in (1, 10, 100)},
              "mrr@10": 1 / ranks[0] if ranks[0] <= 10 else 0.0}
    if len(ranks) > 1:
        values["rank_distance"] = float(ranks[-1] - ranks[0])
    return values


def setting_metrics(ranking: dict[str, list[str]], qrels: dict[str, dict[str, int]], query_lang: dict[str, str],
                    doc_lang: dict[str, str], setting: str, key: str) -> tuple[dict[str, float], int]:
    """Macro averages of one entry of metrics.json (`mono` `sw`, `cross` `sw->en`, `multi` `sw`) from the
    whole-corpus ranking restricted to the entry's corpus languages; queries without a relevant document there
    are left out, and rank_distance (multi only) averages over the queries with two relevant documents or more."""
    x, _, y = key.partition("->")
    corpus_languages = set(doc_lang.values()) if setting == "multi" else {y or x}
    per_query = []
    for qid, docs in ranking.items():
        grades = {d: g for d, g in qrels.get(qid, {}).items() if doc_lang[d] in corpus_languages}
        if query_lang[qid] != x or not any(g > 0 for g in grades.values()):
            continue
        values = measures([d for d in docs if doc_lang[d] in corpus_languages], grades)
        if setting != "multi":
            values.pop("rank_distance", None)
        per_query.append(values)
    names = dict.fromkeys(name for values in per_query for name in values)
    return {name: fmean(v[name] for v in per_query if name in v) for name in names}, len(per_query)
