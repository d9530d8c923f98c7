"""Per-query measures: the standard ones through ir_measures (trec_eval's implementations), and the two that no
library has: LAReQA's mAP over the full ranking and the rank distance of Huang et al. (2023), both from exact
ranks (ties broken by corpus position, as in the runs)."""

from __future__ import annotations

import ir_measures
from ir_measures import RR, R, nDCG

# polyir's metric names (DESIGN.md) -> ir_measures measures
LIBRARY_MEASURES = {"ndcg@10": nDCG @ 10, "recall@1": R @ 1, "recall@10": R @ 10, "recall@100": R @ 100,
                    "mrr@10": RR @ 10}
LIBRARY_DEPTH = 100  # the deepest cut-off among LIBRARY_MEASURES
METRICS = ["map", *LIBRARY_MEASURES, "rank_distance"]

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def relevant_ranks(scores: list[float], positions: list[int], above: list[int]) -> list[int]:
    """Full-ranking ranks of a query's relevant documents, best first.

    scores / positions: the relevant documents' scores and corpus positions (ties go to the earlier position);
    above: for each, the number of non-relevant documents ranked before it. The i-th best relevant document
    (1-based) is preceded by i - 1 relevant ones."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], positions[j]))
    return [i + 1 + above[j] for i, j in enumerate(order)]


def average_precision(ranks: list[int]) -> float:
    """AP over the full ranking, from the sorted ranks of all relevant documents."""
    return sum((i + 1) / rank for i, rank in enumerate(ranks)) / len(ranks) if ranks else 0.0


def rank_distance(ranks: list[int]) -> float:
    """Rank of the lowest-ranked relevant document minus that of the highest-ranked one."""
    return float(ranks[-1] - ranks[0])


def library_measures(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """{query id: {metric: value}} for the standard measures; queries missing from the run score 0."""
    names = {str(measure): name for name, measure in LIBRARY_MEASURES.items()}
    values: dict[str, dict[str, float]] = {qid: dict.fromkeys(LIBRARY_MEASURES, 0.0) for qid in qrels}
    for item in ir_measures.iter_calc(list(LIBRARY_MEASURES.values()), qrels, run):
        values[item.query_id][names[str(item.measure)]] = float(item.value)
    return values
