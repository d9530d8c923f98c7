"""InfoNCE with in-batch negatives: query i's positive is passage i; every other passage of the batch (or of a
memory bank appended to it), and every hard negative, is a negative of query i, but for what negatives.py masks
(another language of the query's own example)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from polyir.config import OptimConfig
from polyir.training.negatives import Audit, translations


@dataclass(frozen=True)
class InfoNCE:
    """Cross-entropy of similarity / temperature (cosine when the embeddings are normalised); `symmetric` adds the
    passage-to-query direction (over the batch's queries) and averages the two. One object serves every step
    strategy, data parallelism and the benchmarks alike."""

    temperature: float = 0.05
    symmetric: bool = False

    @classmethod
    def of(cls, optim: OptimConfig) -> InfoNCE:
        return cls(optim.temperature, optim.symmetric)

    def __call__(self, queries: torch.Tensor, passages: torch.Tensor, negatives: torch.Tensor | None = None,
                 rows: slice | torch.Tensor | None = None, denominator: int | None = None,
                 meta: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                 audit: Audit | None = None) -> torch.Tensor:
        """`rows` are the queries (and passages) whose terms this process sums, `denominator` what the sum is
        divided by; the defaults give the mean over the batch. Under data parallelism each rank sums its own rows
        against every rank's candidates and divides by the global batch size, so that summed gradients are the
        whole batch's. Passages may outnumber queries (a bank of passages only); row i's positive is passage i.

        `meta`, the Meta rows of the queries, passages and negatives, lets negatives.translations mask false
        negatives, and `audit` count what each row's query saw."""
        rows = rows if rows is not None else slice(0, len(queries))
        labels = torch.arange(len(queries), device=queries.device)[rows]
        denominator = denominator or len(labels)
        has_negatives = negatives is not None and len(negatives) > 0
        candidates = torch.cat([passages, negatives]) if has_negatives else passages
        t = self.temperature
        logits = queries[rows].float() @ candidates.float().T / t
        if meta is not None:
            query_meta, passage_meta, negative_meta = meta
            columns = torch.cat([passage_meta, negative_meta]) if has_negatives else passage_meta
            masked = translations(query_meta[labels], columns, labels)
            logits = logits.masked_fill(masked, float("-inf"))  # nothing masked: the same numbers, bit for bit
            if audit is not None:
                audit.add(query_meta[labels], columns, labels, masked)
        loss = F.cross_entropy(logits, labels, reduction="sum")
        if self.symmetric:
            back = passages[rows].float() @ queries.float().T / t
            if meta is not None:
                back = back.masked_fill(translations(passage_meta[labels], query_meta, labels), float("-inf"))
            loss = (loss + F.cross_entropy(back, labels, reduction="sum")) / 2
        return loss / denominator
