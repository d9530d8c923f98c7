"""Exact dense search in chunks: top-k per query, and the exact full-corpus rank of every relevant document.

The rank of a document is 1 + the number of documents ranked before it, so ranks need only a count per relevant
document, never a sort of the corpus. Queries and documents go in chunks, so that a corpus of millions never
needs the whole query-by-document matrix in memory. Ties are broken by corpus position (earlier first), in the
runs and in the ranks alike, so that metrics recomputed from a run agree exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

NO_DOC = -1
COMPARE_BUDGET = 1 << 26  # elements of the (queries x relevant x docs) comparison held at once


@dataclass(frozen=True)
class Mixture:
    """Representations whose scores add up: product(Mixture(q1, q2), Mixture(d1, d2)) = q1.d1 + q2.d2 (a dense
    and a sparse part, for fusion). Rows are selected in every part alike."""

    parts: tuple

    def __getitem__(self, index) -> Mixture:
        return Mixture(tuple(part[index] for part in self.parts))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.parts[0].shape


def finite(representations) -> bool:
    """Whether embeddings, a sparse matrix or a Mixture of them hold only finite numbers."""
    if isinstance(representations, Mixture):
        return all(finite(part) for part in representations.parts)
    if isinstance(representations, torch.Tensor):
        return bool(torch.isfinite(representations).all())
    return bool(np.isfinite(representations.data).all())


def product(queries, docs) -> torch.Tensor:
    """Scores of every query against every document: embeddings (torch), sparse BM25 matrices (scipy), or a
    Mixture of them."""
    if isinstance(queries, Mixture):
        return sum(product(q, d) for q, d in zip(queries.parts, docs.parts))
    if isinstance(queries, torch.Tensor):
        return queries @ docs.T
    return torch.from_numpy((queries @ docs.T).toarray())


@dataclass
class Scored:
    top_scores: torch.Tensor  # (Q, k) best first
    top_index: torch.Tensor  # (Q, k) positions of the documents
    rel_scores: torch.Tensor  # (Q, R) scores of the relevant documents found here, NaN elsewhere


def _blocks(queries: torch.Tensor, docs: torch.Tensor, query_chunk: int, doc_chunk: int
            ) -> Iterator[tuple[slice, int, torch.Tensor]]:
    for q0 in range(0, queries.shape[0], query_chunk):
        rows = slice(q0, min(q0 + query_chunk, queries.shape[0]))
        for d0 in range(0, docs.shape[0], doc_chunk):
            yield rows, d0, product(queries[rows], docs[d0:d0 + doc_chunk])


def spread(queries, docs, k: int = 100) -> torch.Tensor:
    """Each query's best score minus its k-th best: the range min-max normalisation over the top k divides by."""
    none = torch.full((queries.shape[0], 1), NO_DOC)
    top = top_k(queries, docs, k, none, none).top_scores
    return top[:, 0] - top[:, -1]


def _in_chunk(index: torch.Tensor, d0: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) pairs of the entries of `index` (Q, R) that fall into documents [d0, d0 + width)."""
    rows, cols = ((index >= d0) & (index < d0 + width)).nonzero(as_tuple=True)
    return rows, cols


def _best(scores: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best of each row by (score descending, position ascending)."""
    by_position = index.argsort(dim=1)
    scores, index = scores.gather(1, by_position), index.gather(1, by_position)
    order = scores.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), index.gather(1, order)


def _chunk_best(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best columns of each row by (score descending, position ascending): topk() keeps an arbitrary
    subset of the documents tied at its k-th score, so rows with more such ties than places take the earliest."""
    values, index = scores.topk(k, dim=1)
    edge = values[:, -1:]
    tied = ((scores == edge).sum(1) > (values == edge).sum(1)).nonzero().squeeze(1)
    if len(tied):
        rows, edge = scores[tied], edge[tied]
        better, same = rows > edge, rows == edge
        take = better | (same & (same.cumsum(1) <= k - better.sum(1, keepdim=True)))
        index[tied] = take.nonzero()[:, 1].view(len(tied), k)
        values[tied] = rows.gather(1, index[tied])
    return values, index


def top_k(queries: torch.Tensor, docs: torch.Tensor, k: int, relevant: torch.Tensor, exclude: torch.Tensor,
          query_chunk: int = 1024, doc_chunk: int = 16384) -> Scored:
    """Top-k documents of every query, and the scores of its relevant documents (`relevant`: (Q, R) positions in
    `docs`, NO_DOC elsewhere). `exclude`: (Q, 1) a position left out of the query's ranking, or NO_DOC."""
    n_queries = queries.shape[0]
    k = min(k, docs.shape[0])
    top_scores = torch.full((n_queries, 0), float("-inf"))
    top_index = torch.empty((n_queries, 0), dtype=torch.long)
    parts_scores, parts_index = [], []
    rel_scores = torch.full(relevant.shape, float("nan"))
    for rows, d0, scores in _blocks(queries, docs, query_chunk, doc_chunk):
        r, c = _in_chunk(relevant[rows], d0, scores.shape[1])
        rel_scores[rows][r, c] = scores[r, relevant[rows][r, c] - d0]
        r, c = _in_chunk(exclude[rows], d0, scores.shape[1])
        scores[r, exclude[rows][r, c] - d0] = float("-inf")
        values, index = _chunk_best(scores, min(k, scores.shape[1]))
        index += d0
        if d0 == 0:
            parts_scores.append(values)
            parts_index.append(index)
        else:
            parts_scores[-1], parts_index[-1] = _best(torch.cat([parts_scores[-1], values], 1),
                                                      torch.cat([parts_index[-1], index], 1), k)
    if parts_scores:
        top_scores, top_index = torch.cat(parts_scores), torch.cat(parts_index)
    return Scored(*_best(top_scores, top_index, k), rel_scores)


def top_k_faiss(queries: torch.Tensor, docs: torch.Tensor, k: int, relevant: torch.Tensor,
                exclude: torch.Tensor) -> Scored:
    """top_k() through FAISS's exact inner-product index (IndexFlatIP): its multi-threaded kernels, or its GPU
    build, for large corpora. The relevant documents' scores come from a direct product; scores can differ from
    the default path's in the last bits, so on near-ties a run and the exact ranks may order two documents
    differently."""
    import faiss

    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs.contiguous().numpy())
    k = min(k, docs.shape[0])
    scores, ids = index.search(queries.contiguous().numpy(), min(k + 1, docs.shape[0]))  # +1: an excluded id
    scores, ids = torch.from_numpy(scores), torch.from_numpy(ids).long()
    scores = scores.masked_fill((ids == exclude) | (ids < 0), float("-inf"))
    rel_scores = torch.einsum("qd,qrd->qr", queries, docs[relevant.clamp(min=0)])
    return Scored(*_best(scores, ids.clamp(min=0), k), rel_scores.masked_fill(relevant == NO_DOC, float("nan")))


def count_above(queries: torch.Tensor, docs: torch.Tensor, relevant: torch.Tensor, exclude: torch.Tensor,
                rel_scores: torch.Tensor, rel_position: torch.Tensor, offset: int = 0, query_chunk: int = 1024,
                doc_chunk: int = 16384) -> torch.Tensor:
    """(Q, R): how many documents of `docs` that are not relevant to the query rank before each relevant one.

    rel_scores / rel_position: score and corpus position of every relevant document of the query (NaN / any
    for padding); `docs` start at corpus position `offset`; `relevant` marks the query's relevant documents
    among `docs` (local positions, NO_DOC elsewhere), which are not counted, nor is `exclude` (as in top_k)."""
    above = torch.zeros(rel_scores.shape, dtype=torch.long)
    width = max(1, rel_scores.shape[1])
    for rows, d0, scores in _blocks(queries, docs, query_chunk, doc_chunk):
        for index in (relevant[rows], exclude[rows]):
            r, c = _in_chunk(index, d0, scores.shape[1])
            scores[r, index[r, c] - d0] = float("-inf")
        position = torch.arange(offset + d0, offset + d0 + scores.shape[1])
        step = max(1, COMPARE_BUDGET // (width * scores.shape[1]))
        for s0 in range(0, scores.shape[0], step):
            sub = slice(rows.start + s0, min(rows.start + s0 + step, rows.stop))
            s = scores[s0:s0 + step].unsqueeze(1)
            threshold, before = rel_scores[sub].unsqueeze(2), rel_position[sub].unsqueeze(2)
            above[sub] += ((s > threshold) | ((s == threshold) & (position < before))).sum(2)
    return above
