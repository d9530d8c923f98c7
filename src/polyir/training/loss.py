"""InfoNCE with in-batch negatives: query i's positive is passage i; every other passage of the batch, and every
hard negative, is a negative of query i."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from polyir.config import OptimConfig


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
                 rows: slice | None = None, denominator: int | None = None) -> torch.Tensor:
        """`rows` are the queries (and passages) whose terms this process sums, `denominator` what the sum is
        divided by; the defaults give the mean over the batch. Under data parallelism each rank sums its own rows
        against every rank's candidates and divides by the global batch size, so that summed gradients are the
        whole batch's."""
        rows = rows if rows is not None else slice(0, len(queries))
        denominator = denominator or (rows.stop - rows.start)
        candidates = passages if negatives is None or len(negatives) == 0 else torch.cat([passages, negatives])
        labels = torch.arange(rows.start, rows.stop, device=queries.device)
        t = self.temperature
        loss = F.cross_entropy(queries[rows].float() @ candidates.float().T / t, labels, reduction="sum")
        if self.symmetric:
            backward = F.cross_entropy(passages[rows].float() @ queries.float().T / t, labels, reduction="sum")
            loss = (loss + backward) / 2
        return loss / denominator
