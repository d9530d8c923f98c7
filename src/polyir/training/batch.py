"""One training step's pairs as token ids: the record every step strategy consumes, tokenised once (on the
loader's thread), cut into micro-batches, and read back as queries, passages and hard negatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from polyir.models.biencoder import BiEncoder
from polyir.training.negatives import HARD, meta, stable_id
from polyir.training.sampling import Pair

KINDS = ("query", "passage", "negative")
Ids = tuple[int, int, int]  # a pair's example, query language and passage language (negatives.stable_id)


def ids_of(pairs: list[Pair]) -> list[Ids]:
    return [(stable_id(p.example.id), stable_id(p.query_lang), stable_id(p.passage_lang)) for p in pairs]


@dataclass
class Batch:
    """A query and a passage per pair, and a hard negative where the pair has one; `ids` says whose and in which
    languages. Under data parallelism, `ranks` says which pairs of every rank's share have a negative (the row
    counts of every rank) and `rank_ids` every rank's `ids`, known without asking the other ranks (which would
    make the host wait)."""

    queries: list[list[int]]
    passages: list[list[int]]
    negatives: list[list[int] | None]
    ids: list[Ids]
    ranks: list[list[bool]] | None = None
    rank_ids: list[list[Ids]] | None = None

    @classmethod
    def of(cls, model: BiEncoder, pairs: list[Pair], tokenizer=None, shares: list[list[Pair]] | None = None
           ) -> Batch:
        """Tokenise `pairs` with `model`'s settings (another thread passes its own copy of the tokenizer);
        `shares`: every rank's pairs, under data parallelism."""
        with_negative = [i for i, p in enumerate(pairs) if p.negative is not None]
        negatives: list[list[int] | None] = [None] * len(pairs)
        if with_negative:
            ids = model.tokenize([pairs[i].negative for i in with_negative],
                                 [pairs[i].passage_lang for i in with_negative], "passage", tokenizer)
            for i, row in zip(with_negative, ids):
                negatives[i] = row
        return cls(model.tokenize([p.query for p in pairs], [p.query_lang for p in pairs], "query", tokenizer),
                   model.tokenize([p.passage for p in pairs], [p.passage_lang for p in pairs], "passage",
                                  tokenizer),
                   negatives, ids_of(pairs),
                   [[p.negative is not None for p in share] for share in shares] if shares else None,
                   [ids_of(share) for share in shares] if shares else None)

    def __len__(self) -> int:
        return len(self.queries)

    def split(self, size: int) -> list[Batch]:
        """Micro-batches of `size` pairs (under data parallelism, of every rank's share alike)."""
        return [Batch(self.queries[i:i + size], self.passages[i:i + size], self.negatives[i:i + size],
                      self.ids[i:i + size], [flags[i:i + size] for flags in self.ranks] if self.ranks else None,
                      [ids[i:i + size] for ids in self.rank_ids] if self.rank_ids else None)
                for i in range(0, len(self), size)]

    def rows(self, kind: str) -> list[int] | None:
        """Every rank's number of embeddings of `kind`, when known (see `ranks`)."""
        if self.ranks is None:
            return None
        return [sum(flags) if kind == "negative" else len(flags) for flags in self.ranks]

    @property
    def texts(self) -> list[list[int]]:
        """Queries, then passages, then the negatives that exist: the order of `KINDS`."""
        return self.queries + self.passages + [n for n in self.negatives if n is not None]

    def kinds(self, embeddings: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Embeddings in the order of `texts`, cut into queries, passages and negatives (None when none)."""
        n = len(self)
        return {"query": embeddings[:n], "passage": embeddings[n:2 * n],
                "negative": embeddings[2 * n:] if len(embeddings) > 2 * n else None}

    def meta(self, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """negatives.meta rows of every rank's queries, passages and hard negatives, in the order the embeddings
        are gathered (rank by rank)."""
        shares = self.rank_ids or [self.ids]
        flags = self.ranks or [[n is not None for n in self.negatives]]
        out: dict[str, list[torch.Tensor]] = {kind: [] for kind in KINDS}
        for rank, (ids, has) in enumerate(zip(shares, flags)):
            out["query"].append(meta([e for e, _, _ in ids], [q for _, q, _ in ids], rank))
            out["passage"].append(meta([e for e, _, _ in ids], [p for _, _, p in ids], rank))
            with_negative = [p for (_, _, p), h in zip(ids, has) if h]
            out["negative"].append(meta([HARD] * len(with_negative), with_negative, rank))
        return {kind: torch.cat(rows).to(device) for kind, rows in out.items()}
