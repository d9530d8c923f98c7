"""Which candidates are a query's negatives, stated once for in-batch, cross-device and banked candidates alike,
and an audit of what each query really saw.

The rule: a candidate of the same example as the query is never a negative unless it is a hard negative of the
data, whatever its language and wherever it comes from. In a batch the samplers already keep every example once,
so the rule masks nothing there; a memory bank (ContAccum) may hold another language of the current example, or
the same text from an earlier step, and those are masked (a translation is a false negative).

Every embedding carries a meta row (`meta`): its example (-1: a hard negative, of no example), its language, the
process that made it, and its age in optimiser steps (-1: made in this micro-step; 0 or more: banked, made that
many optimiser steps ago). Ids are 56-bit hashes, the same in every process and after a resume."""

from __future__ import annotations

import hashlib

import torch

EXAMPLE, LANGUAGE, RANK, AGE = range(4)
HARD, FRESH = -1, -1
FIELDS = ("in_batch_same_language", "in_batch_other_language", "cross_device", "banked", "banked_age",
          "hard", "masked_translations")


def stable_id(text: str) -> int:
    """A 56-bit id of a string, the same in every process and every run (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "big")


def meta(examples: list[int], languages: list[int], rank: int = 0, age: int = FRESH) -> torch.Tensor:
    """Meta rows for embeddings made by `rank` `age` steps ago (examples of HARD for hard negatives)."""
    rows = torch.empty(len(examples), 4, dtype=torch.long)
    rows[:, EXAMPLE] = torch.tensor(examples, dtype=torch.long)
    rows[:, LANGUAGE] = torch.tensor(languages, dtype=torch.long)
    rows[:, RANK] = rank
    rows[:, AGE] = age
    return rows


def translations(rows: torch.Tensor, columns: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """rows × columns: True where the column is of the row's example but is not its positive (column `labels[i]`
    of row i) and not a hard negative: never a negative."""
    same = (rows[:, EXAMPLE, None] == columns[None, :, EXAMPLE]) & (columns[None, :, EXAMPLE] != HARD)
    positive = torch.zeros_like(same)
    positive[torch.arange(len(rows), device=rows.device), labels] = True
    return same & ~positive


class Audit:
    """Sums, over the queries whose terms a process computes, of each kind of negative they saw (`FIELDS`; the
    banked ones' ages summed in `banked_age`), and how many queries: `mean()` is per query."""

    def __init__(self):
        self.sums: torch.Tensor | None = None  # on the device of the embeddings: adding never waits for it

    def add(self, queries: torch.Tensor, columns: torch.Tensor, labels: torch.Tensor, masked: torch.Tensor) -> None:
        """`queries` and `columns` are Meta rows; `masked` what `translations` masked for these queries."""
        counted = (queries[:, AGE] == FRESH)[:, None]  # a bank's queries (ContAccum) are rows, not trained queries
        candidate = counted.expand_as(masked).clone()
        candidate[torch.arange(len(queries), device=queries.device), labels] = False  # the positive: no negative
        kept = candidate & ~masked
        hard = (columns[:, EXAMPLE] == HARD)[None, :]
        banked = (columns[:, AGE] != FRESH)[None, :] & ~hard
        fresh = ~banked & ~hard
        local = queries[:, RANK, None] == columns[None, :, RANK]
        same_language = queries[:, LANGUAGE, None] == columns[None, :, LANGUAGE]
        counts = [kept & fresh & local & same_language, kept & fresh & local & ~same_language,
                  kept & fresh & ~local, kept & banked]
        ages = ((kept & banked).sum(dim=0) * columns[:, AGE].clamp(min=0)).sum()  # per column first: no B × B ints
        values = [c.sum() for c in counts] + [ages, (kept & hard).sum(), (masked & counted).sum(), counted.sum()]
        added = torch.stack(values).double()
        self.sums = added if self.sums is None else self.sums + added

    def summed(self, world) -> Audit:
        """The audit of every process's queries (one all-reduce), when each counted its own."""
        if self.sums is not None:
            self.sums = world.sum(self.sums)
        return self

    def mean(self) -> dict[str, float]:
        """Per query: how many negatives of each kind, how stale the banked ones (mean age in optimiser steps)."""
        sums = dict(zip((*FIELDS, "queries"), self.sums.tolist())) if self.sums is not None else {}
        queries = sums.get("queries") or 1.0
        out = {name: sums.get(name, 0.0) / queries for name in FIELDS}
        out["banked_age"] = sums["banked_age"] / sums["banked"] if sums.get("banked") else 0.0
        return out
