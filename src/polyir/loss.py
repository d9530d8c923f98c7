"""InfoNCE with in-batch negatives: query i's positive is passage i; every other passage of the batch, and every
hard negative, is a negative of query i."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, passages: torch.Tensor, temperature: float,
             negatives: torch.Tensor | None = None, symmetric: bool = False, rows: slice | None = None,
             denominator: int | None = None) -> torch.Tensor:
    """Cross-entropy of similarity / temperature (cosine when the embeddings are normalised).

    symmetric adds the passage-to-query direction (over the batch's queries) and averages the two. `rows` are
    the queries (and passages) whose terms this process sums, `denominator` what the sum is divided by; the
    defaults give the mean over the batch. Under data parallelism each rank sums its own rows against every
    rank's candidates and divides by the global batch size, so that summed gradients are the whole batch's."""
    rows = rows if rows is not None else slice(0, len(queries))
    denominator = denominator or (rows.stop - rows.start)
    candidates = passages if negatives is None or len(negatives) == 0 else torch.cat([passages, negatives])
    labels = torch.arange(rows.start, rows.stop, device=queries.device)
    loss = F.cross_entropy(queries[rows].float() @ candidates.float().T / temperature, labels, reduction="sum")
    if symmetric:
        backward = F.cross_entropy(passages[rows].float() @ queries.float().T / temperature, labels, reduction="sum")
        loss = (loss + backward) / 2
    return loss / denominator
