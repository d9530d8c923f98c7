"""Per-query measures from exact ranks: the one ranking (ties broken by corpus position) that the runs list too,
so that every number in metrics.json can be recomputed from a run file.

LAReQA's mAP over the full ranking and the rank distance of Huang et al. (2023) exist in no library; the standard
measures follow trec_eval's definitions (nDCG@k with the grade as gain and log2(rank + 1) as discount, R@k over
every judged relevant document, RR cut at k), computed here from the same ranks rather than by trec_eval, which
re-sorts tied documents by id and ignores RR's cut-off (tests check the values against ir_measures where those
two cannot matter). Tensors are (queries, relevant documents), best first, valid entries leading."""

from __future__ import annotations

import torch

from polyir.results import METRICS

CUTS = {"ndcg@10": 10, "recall@1": 1, "recall@10": 10, "recall@100": 100, "mrr@10": 10}
assert METRICS == ("map", *CUTS, "rank_distance")  # the names metrics.json uses (results.py)


def relevant_ranks(scores: torch.Tensor, positions: torch.Tensor, above: torch.Tensor, valid: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full-ranking ranks of each query's relevant documents, best first, which entries are real, and the order
    (indices into the inputs' columns) that sorts them so.

    scores / positions: the relevant documents' scores and corpus positions; above: for each, the number of
    non-relevant documents ranked before it; valid: which entries are relevant documents of the setting.
    The i-th best relevant document (1-based) is preceded by i - 1 relevant ones."""
    scores = scores.masked_fill(~valid, float("-inf"))
    by_position = positions.masked_fill(~valid, torch.iinfo(torch.long).max).argsort(dim=1)
    by_score = scores.gather(1, by_position).sort(dim=1, descending=True, stable=True).indices
    order = by_position.gather(1, by_score)
    place = torch.arange(1, scores.shape[1] + 1).expand_as(scores)
    return place + above.gather(1, order), valid.gather(1, order), order


def average_precision(ranks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """AP over the full ranking."""
    place = torch.arange(1, ranks.shape[1] + 1).expand_as(ranks)
    return ((place / ranks.double()) * valid).sum(1) / valid.sum(1).clamp(min=1)


def rank_distance(ranks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Rank of the lowest-ranked relevant document minus that of the highest-ranked one."""
    last = ranks.gather(1, (valid.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
    return (last - ranks[:, 0]).double()


def measures_at_cuts(ranks: torch.Tensor, valid: torch.Tensor, grades: torch.Tensor) -> dict[str, torch.Tensor]:
    """ndcg@10, recall@1/10/100 and mrr@10 of every query, each cut at its k; `grades`: the relevance grade of
    each entry, in the same order as `ranks`."""
    grades = grades.double() * valid
    found = {k: valid & (ranks <= k) for k in set(CUTS.values())}
    relevant = valid.sum(1).clamp(min=1).double()
    values = {f"recall@{k}": found[k].sum(1) / relevant for k in (1, 10, 100)}
    values["mrr@10"] = torch.where(found[10][:, 0], 1.0 / ranks[:, 0].double(), 0.0)
    discount = torch.log2(ranks.double() + 1)
    ideal = grades.sort(dim=1, descending=True).values[:, :10]
    ideal_dcg = (ideal / torch.log2(torch.arange(2, ideal.shape[1] + 2, dtype=torch.float64))).sum(1)
    values["ndcg@10"] = (grades * found[10] / discount).sum(1) / ideal_dcg.clamp(min=1e-300)
    return {name: values[name] for name in CUTS}
