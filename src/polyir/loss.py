"""InfoNCE with in-batch negatives: query i's positive is passage i; every other passage of the batch, and every
hard negative, is a negative of query i."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, passages: torch.Tensor, temperature: float,
             negatives: torch.Tensor | None = None, symmetric: bool = False) -> torch.Tensor:
    """Mean cross-entropy of similarity / temperature (cosine when the embeddings are normalised).

    symmetric adds the passage-to-query direction (over the batch's queries) and averages the two."""
    candidates = passages if negatives is None or len(negatives) == 0 else torch.cat([passages, negatives])
    labels = torch.arange(len(queries), device=queries.device)
    loss = F.cross_entropy(queries.float() @ candidates.float().T / temperature, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(passages.float() @ queries.float().T / temperature, labels)) / 2
    return loss
