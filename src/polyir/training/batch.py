"""One training step's pairs as token ids: the record every step strategy consumes, tokenised once (on the
loader's thread), cut into micro-batches, and read back as queries, passages and hard negatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from polyir.models.biencoder import BiEncoder
from polyir.training.sampling import Pair

KINDS = ("query", "passage", "negative")


@dataclass
class Batch:
    """A query and a passage per pair, and a hard negative where the pair has one. Under data parallelism,
    `ranks` says which pairs of every rank's share have a negative: the row counts of every rank, known without
    asking the other ranks (which would make the host wait)."""

    queries: list[list[int]]
    passages: list[list[int]]
    negatives: list[list[int] | None]
    ranks: list[list[bool]] | None = None

    @classmethod
    def of(cls, model: BiEncoder, pairs: list[Pair], tokenizer=None, ranks: list[list[bool]] | None = None) -> Batch:
        """Tokenise `pairs` with `model`'s settings (another thread passes its own copy of the tokenizer)."""
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
                   negatives, ranks)

    def __len__(self) -> int:
        return len(self.queries)

    def split(self, size: int) -> list[Batch]:
        """Micro-batches of `size` pairs (under data parallelism, of every rank's share alike)."""
        return [Batch(self.queries[i:i + size], self.passages[i:i + size], self.negatives[i:i + size],
                      [flags[i:i + size] for flags in self.ranks] if self.ranks else None)
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
