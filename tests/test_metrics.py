"""Metrics against hand-worked rankings and against ir_measures; search against brute force (the @k measures:
test_exact_metrics.py)."""

from __future__ import annotations

import ir_measures
import pytest
import torch

from polyir.evaluation.metrics import average_precision, rank_distance, relevant_ranks
from polyir.evaluation.search import NO_DOC, count_above, top_k


def ranks_of(scores, positions, above, valid=None):
    valid = torch.ones(len(scores), dtype=torch.bool) if valid is None else torch.tensor(valid)
    ranks, ok, _ = relevant_ranks(torch.tensor([scores]), torch.tensor([positions]), torch.tensor([above]),
                                  valid.unsqueeze(0))
    return ranks[0][ok[0]].tolist(), ranks, ok


def test_hand_worked_average_precision_and_rank_distance():
    # relevant documents at ranks 1, 3 and 6: AP = (1/1 + 2/3 + 3/6) / 3, distance 6 - 1
    ranks, valid = torch.tensor([[1, 3, 6], [2, 9, 9]]), torch.tensor([[True, True, True], [True, False, False]])
    assert average_precision(ranks, valid).tolist() == pytest.approx([(1 + 2 / 3 + 0.5) / 3, 0.5])
    assert rank_distance(ranks, valid).tolist() == [5.0, 0.0]


def test_ranks_from_counts():
    # three relevant documents with scores .9, .5, .7; non-relevant documents before each: 0, 3, 1
    # ranking: r(.9)=1, then one non-relevant, r(.7)=3, two more non-relevant, r(.5)=6
    assert ranks_of([0.9, 0.5, 0.7], [4, 8, 2], [0, 3, 1])[0] == [1, 3, 6]
    # a tie between relevant documents goes to the earlier corpus position
    assert ranks_of([0.5, 0.5], [9, 3], [2, 2])[0] == [3, 4]
    # entries that are not relevant in the setting are left out and sorted last
    assert ranks_of([0.9, 0.95, 0.7], [4, 1, 2], [0, 0, 1], [True, False, True])[0] == [1, 3]


def _search(queries, docs, relevant, exclude, k, query_chunk, doc_chunk):
    found = top_k(queries, docs, k, relevant, exclude, query_chunk, doc_chunk)
    above = count_above(queries, docs, relevant, exclude, found.rel_scores, relevant, 0, query_chunk, doc_chunk)
    return found, above


def test_full_ranking_map_and_ranks_equal_a_full_sort_and_trec_eval():
    generator = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(30, 16, generator=generator), dim=1)
    docs = torch.nn.functional.normalize(torch.randn(500, 16, generator=generator), dim=1)
    docs[100:110] = docs[5]  # exact ties: ten copies of one document
    relevant = torch.stack([torch.randperm(500, generator=generator)[:4] for _ in range(30)])
    relevant[:, 3] = NO_DOC  # padding
    relevant[0, 0], relevant[1, 0] = 5, 104  # relevant documents tied with non-relevant ones
    exclude = torch.full((30, 1), NO_DOC)
    found, above = _search(queries, docs, relevant, exclude, 500, query_chunk=7, doc_chunk=64)
    scores = queries @ docs.T
    qrels = {str(q): {str(int(d)): 1 for d in relevant[q] if d != NO_DOC} for q in range(30)}
    run = {str(q): {str(d): float(scores[q, d]) for d in range(500)} for q in range(30)}
    expected_ap = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.AP], qrels, run)}
    for q in range(30):
        valid = [0, 1, 2]
        ranks, ranks_tensor, ok = ranks_of([float(found.rel_scores[q, j]) for j in valid],
                                           [int(relevant[q, j]) for j in valid], [int(above[q, j]) for j in valid])
        # the ranks are the positions in the written ranking (ties: earlier position first) ...
        ranking = found.top_index[q].tolist()
        assert ranks == sorted(ranking.index(int(relevant[q, j])) + 1 for j in valid)
        # ... and in a stable full sort of the scores
        order = scores[q].sort(descending=True, stable=True).indices.tolist()
        assert ranking == order
        tied = {5, *range(100, 110)}
        if not tied & {int(relevant[q, j]) for j in valid}:  # trec_eval breaks ties by name, not position
            assert float(average_precision(ranks_tensor, ok)) == pytest.approx(expected_ap[str(q)], abs=1e-7)


def test_chunked_top_k_equals_a_full_sort_and_respects_exclusion():
    generator = torch.Generator().manual_seed(1)
    queries, docs = torch.randn(50, 8, generator=generator), torch.randn(300, 8, generator=generator)
    exclude = torch.full((50, 1), NO_DOC)
    exclude[::3] = 7
    empty = torch.full((50, 1), NO_DOC)
    found, above = _search(queries, docs, empty, exclude, 20, query_chunk=16, doc_chunk=40)
    scores = queries @ docs.T
    scores[torch.arange(0, 50, 3), 7] = float("-inf")
    expected_scores, expected_index = scores.topk(20, dim=1)
    torch.testing.assert_close(found.top_scores, expected_scores)
    assert torch.equal(found.top_index, expected_index)
    assert not (found.top_index[::3] == 7).any()


def test_faiss_backend_gives_the_exact_results():
    from polyir.data.records import Document, Query, RetrievalTask
    from polyir.evaluation.harness import evaluate_embeddings

    generator = torch.Generator().manual_seed(2)
    corpus = [Document(f"{lang}-{i}", "", lang) for lang in ("en", "sw") for i in range(300)]
    queries = [Query(f"q{i}-{lang}", "", lang) for lang in ("en", "sw") for i in range(40)]
    qrels = {q.id: {f"{lang}-{q.id[1:].split('-')[0]}": 1 for lang in ("en", "sw")} for q in queries}
    task = RetrievalTask("t", corpus, queries, qrels)
    docs = torch.nn.functional.normalize(torch.randn(600, 16, generator=generator), dim=1)
    near = torch.tensor([(0 if q.lang == "en" else 300) + int(q.id[1:].split("-")[0]) for q in queries])
    query_emb = torch.nn.functional.normalize(docs[near] + 0.3 * torch.randn(80, 16, generator=generator), dim=1)
    exact = evaluate_embeddings(task, query_emb, docs, depth=50)
    approx = evaluate_embeddings(task, query_emb, docs, depth=50, backend="faiss")
    for setting, values in exact.table.summary.items():
        for name, value in values.items():
            assert approx.table.summary[setting][name] == pytest.approx(value, abs=1e-6), (setting, name)
    assert exact.table.summary["multi"]["map"] > 0.3
