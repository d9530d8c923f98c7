"""Per-query measures: the standard ones through ir_measures (trec_eval's implementations, via pytrec_eval), and
the two that no library has: LAReQA's mAP over the full ranking and the rank distance of Huang et al. (2023),
both from exact ranks (ties broken by corpus position, as in the runs). Rank tensors are (queries, relevant)."""

from __future__ import annotations

import ir_measures
import torch
from ir_measures import RR, R, nDCG

from polyir.results import METRICS

# polyir's metric names (DESIGN.md) -> ir_measures measures
LIBRARY_MEASURES = {"ndcg@10": nDCG @ 10, "recall@1": R @ 1, "recall@10": R @ 10, "recall@100": R @ 100,
                    "mrr@10": RR @ 10}
LIBRARY_DEPTH = 100  # the deepest cut-off among LIBRARY_MEASURES
assert METRICS == ("map", *LIBRARY_MEASURES, "rank_distance")  # the names metrics.json uses (results.py)

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def relevant_ranks(scores: torch.Tensor, positions: torch.Tensor, above: torch.Tensor, valid: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-ranking ranks of each query's relevant documents, best first, and which entries are real.

    scores / positions: the relevant documents' scores and corpus positions; above: for each, the number of
    non-relevant documents ranked before it; valid: which entries are relevant documents of the setting.
    The i-th best relevant document (1-based) is preceded by i - 1 relevant ones."""
    scores = scores.masked_fill(~valid, float("-inf"))
    by_position = positions.masked_fill(~valid, torch.iinfo(torch.long).max).argsort(dim=1)
    by_score = scores.gather(1, by_position).sort(dim=1, descending=True, stable=True).indices
    order = by_position.gather(1, by_score)
    place = torch.arange(1, scores.shape[1] + 1).expand_as(scores)
    return place + above.gather(1, order), valid.gather(1, order)


def average_precision(ranks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """AP over the full ranking; ranks sorted best first with the valid entries leading."""
    place = torch.arange(1, ranks.shape[1] + 1).expand_as(ranks)
    return ((place / ranks) * valid).sum(1) / valid.sum(1).clamp(min=1)


def rank_distance(ranks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Rank of the lowest-ranked relevant document minus that of the highest-ranked one."""
    last = ranks.gather(1, (valid.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
    return (last - ranks[:, 0]).double()


def library_measures(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """{query id: {metric: value}} for the standard measures; queries missing from the run score 0."""
    by_id = {id(measure): name for name, measure in LIBRARY_MEASURES.items()}  # str(measure) is slow
    by_name = {str(measure): name for name, measure in LIBRARY_MEASURES.items()}
    values: dict[str, dict[str, float]] = {qid: dict.fromkeys(LIBRARY_MEASURES, 0.0) for qid in qrels}
    for item in ir_measures.pytrec_eval.iter_calc(list(LIBRARY_MEASURES.values()), qrels, run):
        name = by_id.get(id(item.measure)) or by_name[str(item.measure)]
        values[item.query_id][name] = float(item.value)
    return values
