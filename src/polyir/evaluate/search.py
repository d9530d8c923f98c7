"""Exact dense search in chunks: top-k per query, and the exact full-corpus rank of every relevant document.

The rank of a document is 1 + the number of documents that score higher, so ranks need only a count per
relevant document, never a sort of the corpus; queries and documents are processed in chunks so that a corpus
of millions never needs the whole query-by-document matrix in memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch

NO_DOC = -1
COMPARE_BUDGET = 1 << 26  # elements of the (queries x relevant x docs) comparison held at once


@dataclass
class ScanResult:
    """One query set scanned against one document group (indices are local to the group)."""

    top_scores: torch.Tensor  # (Q, k) descending
    top_index: torch.Tensor  # (Q, k)
    above: torch.Tensor  # (Q, R): documents of the group, not relevant to the query, scoring above relevant r


def relevant_scores(queries: torch.Tensor, docs: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Scores of each query's relevant documents (`relevant` holds global indices, NO_DOC for padding)."""
    gathered = docs[relevant.clamp(min=0)]  # (Q, R, d)
    scores = torch.einsum("qd,qrd->qr", queries, gathered)
    return scores.masked_fill(relevant == NO_DOC, float("nan"))


def scan(queries: torch.Tensor, docs: torch.Tensor, k: int, relevant: torch.Tensor, rel_scores: torch.Tensor,
         exclude: torch.Tensor | None = None, query_chunk: int = 1024, doc_chunk: int = 16384) -> ScanResult:
    """Top-k of `docs` for every query, and counts of non-relevant documents above each relevant score.

    relevant: (Q, R) indices into `docs` of the query's relevant documents that lie in this group (NO_DOC
    otherwise); rel_scores: (Q, R) the scores of all the query's relevant documents (NaN for padding);
    exclude: (Q,) a document index to leave out of the query's ranking (BEIR's identical-id rule), or NO_DOC."""
    n_queries, n_docs = queries.shape[0], docs.shape[0]
    k = min(k, n_docs)
    top_scores = torch.empty(n_queries, k)
    top_index = torch.empty(n_queries, k, dtype=torch.long)
    above = torch.zeros(rel_scores.shape, dtype=torch.long)
    width = max(1, rel_scores.shape[1])
    for q0 in range(0, n_queries, query_chunk):
        q1 = min(q0 + query_chunk, n_queries)
        best_scores = torch.full((q1 - q0, 0), float("-inf"))
        best_index = torch.empty((q1 - q0, 0), dtype=torch.long)
        for d0 in range(0, n_docs, doc_chunk):
            d1 = min(d0 + doc_chunk, n_docs)
            scores = queries[q0:q1] @ docs[d0:d1].T
            _drop(scores, exclude[q0:q1] if exclude is not None else None, d0, d1)
            chunk_k = min(k, d1 - d0)
            values, index = scores.topk(chunk_k, dim=1)
            best_scores, order = torch.cat([best_scores, values], 1).topk(min(k, best_scores.shape[1] + chunk_k), 1)
            best_index = torch.cat([best_index, index + d0], 1).gather(1, order)
            _drop(scores, relevant[q0:q1], d0, d1)
            step = max(1, COMPARE_BUDGET // (width * (d1 - d0)))
            for r0 in range(0, q1 - q0, step):
                rows = slice(r0, min(r0 + step, q1 - q0))
                threshold = rel_scores[q0:q1][rows].unsqueeze(2)
                above[q0:q1][rows] += (scores[rows].unsqueeze(1) > threshold).sum(2)
        top_scores[q0:q1], top_index[q0:q1] = best_scores, best_index
    return ScanResult(top_scores, top_index, above)


def _drop(scores: torch.Tensor, index: torch.Tensor | None, d0: int, d1: int) -> None:
    """Set scores[i, index[i, ...] - d0] to -inf where the index falls into the chunk [d0, d1)."""
    if index is None:
        return
    index = index.reshape(scores.shape[0], -1)
    inside = (index >= d0) & (index < d1)
    rows, cols = inside.nonzero(as_tuple=True)
    scores[rows, index[rows, cols] - d0] = float("-inf")
