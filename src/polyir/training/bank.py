"""ContAccum's memory bank: the most recent query and passage representations (detached), first in first out,
each with its negatives.meta row, so that the rule of negatives.py can mask another language of the current
example and the audit can tell how stale a banked negative is.

Kept whole on every process: under data parallelism every rank enqueues every rank's representations of a
micro-step (the gather the in-batch negatives already needed), so the bank, like the model, is the same
everywhere and a run on N processes computes what one process computes."""

from __future__ import annotations

import torch

from polyir.training.negatives import AGE


class MemoryBank:
    """`size` query and passage representations at most; `dual=False` banks passages only (the ablation Kim et
    al. argue against: only the passage encoder's gradient grows with the bank)."""

    def __init__(self, size: int, dual: bool = True):
        self.size, self.dual = size, dual
        self.queries = self.passages = self.query_meta = self.passage_meta = None

    def __len__(self) -> int:
        return 0 if self.passages is None else len(self.passages)

    def push(self, queries: torch.Tensor, passages: torch.Tensor, query_meta: torch.Tensor,
             passage_meta: torch.Tensor, step: int) -> None:
        """Enqueue one micro-step's pairs, made at optimiser step `step`; the oldest leave beyond `size`."""
        if self.size == 0:
            return
        query_meta, passage_meta = query_meta.clone(), passage_meta.clone()
        query_meta[:, AGE] = passage_meta[:, AGE] = step  # stored as the step made; read as an age
        self.passages = self._appended(self.passages, passages.detach().float())
        self.passage_meta = self._appended(self.passage_meta, passage_meta)
        if self.dual:
            self.queries = self._appended(self.queries, queries.detach().float())
            self.query_meta = self._appended(self.query_meta, query_meta)

    def _appended(self, before: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
        return (value if before is None else torch.cat([before, value]))[-self.size:]

    def read(self, step: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                                               torch.Tensor | None, torch.Tensor | None]:
        """(queries, passages, query meta, passage meta) as of optimiser step `step`: ages in steps; the queries
        are None for a passage-only bank, everything None for an empty one."""
        if not len(self):
            return None, None, None, None
        passage_meta = self.passage_meta.clone()
        passage_meta[:, AGE] = step - passage_meta[:, AGE]
        if not self.dual:
            return None, self.passages.to(device), None, passage_meta.to(device)
        query_meta = self.query_meta.clone()
        query_meta[:, AGE] = step - query_meta[:, AGE]
        return self.queries.to(device), self.passages.to(device), query_meta.to(device), passage_meta.to(device)

    def state_dict(self) -> dict:
        return {"queries": self.queries, "passages": self.passages, "query_meta": self.query_meta,
                "passage_meta": self.passage_meta}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        for key, value in state.items():
            setattr(self, key, None if value is None else value.to(device))
