"""The step strategies the comparison is about: how one batch of pairs becomes gradients.

- FullBatch: one graph over the whole batch (memory grows with the batch).
- Accumulation: k micro-batches, each its own contrastive problem with only its own in-batch negatives, their
  gradients averaged: NOT the gradient of the full batch (fewer negatives), the technique the question compares.
- GradCache (Gao et al. 2021): the exact full-batch gradient in bounded memory: embed every chunk without a graph,
  take the full-batch loss's gradient with respect to the embeddings (the representation cache), then re-embed
  each chunk with a graph and back-propagate embedding . cached gradient. The random state of each chunk's first
  pass is replayed in the second, so dropout draws the same masks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from polyir.distributed import SINGLE, World
from polyir.model import BiEncoder, Kind
from polyir.sampling import Pair

# (queries, passages, negatives, rows, denominator) -> loss; see polyir.loss.info_nce
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, slice, int], torch.Tensor]


@dataclass
class Inputs:
    """Tokenised inputs of one group of pairs: queries, passages and the hard negatives that exist."""

    tensors: dict[Kind | str, dict[str, torch.Tensor] | None]

    @classmethod
    def of(cls, model: BiEncoder, pairs: list[Pair]) -> Inputs:
        negatives = [(p.negative, p.passage_lang) for p in pairs if p.negative is not None]
        tensors = {
            "query": model.collate(model.tokenize([p.query for p in pairs], [p.query_lang for p in pairs], "query")),
            "passage": model.collate(model.tokenize([p.passage for p in pairs], [p.passage_lang for p in pairs],
                                                    "passage")),
            "negative": model.collate(model.tokenize([t for t, _ in negatives], [lang for _, lang in negatives],
                                                     "passage")) if negatives else None,
        }
        return cls(tensors)

    def embed(self, model: BiEncoder) -> dict[str, torch.Tensor | None]:
        return {kind: None if batch is None else model(**batch) for kind, batch in self.tensors.items()}


def _split(pairs: list[Pair], size: int) -> list[list[Pair]]:
    return [pairs[i:i + size] for i in range(0, len(pairs), size)]


def by_length(pairs: list[Pair]) -> list[Pair]:
    """Pairs in order of passage length, longest first, so that forward passes over consecutive pairs pad
    little. The contrastive loss does not depend on the order of the pairs (query i stays with passage i)."""
    return sorted(pairs, key=lambda pair: -len(pair.passage))


def _embed_in_buckets(model: BiEncoder, pairs: list[Pair], size: int) -> dict[str, torch.Tensor | None]:
    """The embeddings of a whole batch with a graph, computed in forward passes of `size` pairs of similar length:
    the encoder treats every text on its own, so this is the one-pass result with less padding."""
    parts = [Inputs.of(model, bucket).embed(model) for bucket in _split(pairs, size)]
    return {kind: torch.cat(values) if (values := [p[kind] for p in parts if p[kind] is not None]) else None
            for kind in parts[0]}


class StepStrategy:
    """Accumulates the gradient of one batch into the model's .grad and returns the batch loss.

    `pairs` are this process's share of a batch of `total` pairs; under data parallelism the contrastive problem
    spans every rank's embeddings, and the gradients summed over ranks (World.sum_gradients, once per optimiser
    step) equal those of one process holding the whole batch."""

    def __init__(self, model: BiEncoder, loss: Loss, world: World = SINGLE):
        self.model, self.loss, self.world = model, loss, world

    def backward(self, pairs: list[Pair], total: int | None = None) -> float:
        raise NotImplementedError

    def _gathered(self, local: dict[str, torch.Tensor | None], differentiable: bool
                  ) -> tuple[dict[str, torch.Tensor | None], dict[str, int]]:
        """Every rank's embeddings per kind, and where this rank's rows of each kind begin among them."""
        out, starts = {}, {}
        for kind, value in local.items():
            if value is None:
                value = local["query"].new_zeros(0, local["query"].shape[1])
            gathered, starts[kind] = self.world.gather(value, differentiable)
            out[kind] = gathered if len(gathered) else None
        return out, starts

    def _contrastive(self, local: dict[str, torch.Tensor | None], total: int) -> torch.Tensor:
        embedded, starts = self._gathered(local, differentiable=True)
        rows = slice(starts["query"], starts["query"] + len(local["query"]))
        return self.loss(embedded["query"], embedded["passage"], embedded["negative"], rows, total)


class FullBatch(StepStrategy):
    """One graph over the whole batch; its forward runs in length-sorted buckets of `bucket_size` pairs."""

    def __init__(self, model: BiEncoder, loss: Loss, world: World = SINGLE, bucket_size: int = 32):
        super().__init__(model, loss, world)
        self.bucket_size = bucket_size

    def backward(self, pairs: list[Pair], total: int | None = None) -> float:
        embedded = _embed_in_buckets(self.model, by_length(pairs), self.bucket_size)
        loss = self._contrastive(embedded, total or len(pairs))
        loss.backward()
        return self.world.sum(loss.item())


class Accumulation(StepStrategy):
    """`micro_batch_size` is global: under data parallelism each rank holds its share of every micro-batch."""

    def __init__(self, model: BiEncoder, loss: Loss, micro_batch_size: int, world: World = SINGLE):
        super().__init__(model, loss, world)
        self.micro_batch_size = micro_batch_size

    def backward(self, pairs: list[Pair], total: int | None = None) -> float:
        value = 0.0
        for micro in _split(pairs, self.micro_batch_size // self.world.size):
            loss = self._contrastive(Inputs.of(self.model, micro).embed(self.model), total or len(pairs))
            loss.backward()
            value = value + loss.detach()  # one host synchronisation per step, not one per micro-batch
        return self.world.sum(float(value))


class RandomState:
    """CPU (and current CUDA device) generator states, to replay a forward pass with the same dropout."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class GradCache(StepStrategy):
    """`replay_random_state=False` saves the state copies when nothing random runs (dropout off)."""

    def __init__(self, model: BiEncoder, loss: Loss, chunk_size: int, replay_random_state: bool = True,
                 world: World = SINGLE):
        super().__init__(model, loss, world)
        self.chunk_size, self.replay = chunk_size, replay_random_state

    def backward(self, pairs: list[Pair], total: int | None = None) -> float:
        chunks = [Inputs.of(self.model, chunk) for chunk in _split(by_length(pairs), self.chunk_size)]
        states, cached = [], []
        with torch.no_grad():  # 1. embeddings without a graph
            for chunk in chunks:
                states.append(RandomState(self.model.device) if self.replay else None)
                cached.append(chunk.embed(self.model))
        after_first_pass = RandomState(self.model.device) if self.replay else None
        # 2. the whole batch's loss (every rank's embeddings, gathered once) on detached embeddings,
        #    differentiated with respect to them only; each rank keeps the gradient of its own rows
        local = {kind: self._cat(cached, kind) for kind in ("query", "passage", "negative")}
        gathered, offsets = self._gathered(local, differentiable=False)
        reps = {kind: None if value is None else value.requires_grad_() for kind, value in gathered.items()}
        loss = self.loss(reps["query"], reps["passage"], reps["negative"], slice(0, len(reps["query"])),
                         total or len(pairs))
        loss.backward()
        # 3. re-embed each chunk with a graph, replaying its random state, and push the cached gradient through
        for chunk, state in zip(chunks, states):
            if state is not None:
                state.restore()
            embedded = chunk.embed(self.model)
            surrogate = 0.0
            for kind, value in embedded.items():
                if value is None:
                    continue
                grad = reps[kind].grad[offsets[kind]:offsets[kind] + len(value)]
                offsets[kind] += len(value)
                surrogate = surrogate + (value.float() * grad).sum()
            surrogate.backward()
        if after_first_pass is not None:
            after_first_pass.restore()
        return loss.item()

    @staticmethod
    def _cat(cached: list[dict[str, torch.Tensor | None]], kind: str) -> torch.Tensor | None:
        parts = [c[kind] for c in cached if c[kind] is not None]
        return torch.cat(parts).float() if parts else None


def make_step(strategy: str, model: BiEncoder, loss: Loss, batch_size: int, micro_batch_size: int | None = None,
              chunk_size: int | None = None, world: World = SINGLE) -> StepStrategy:
    if strategy == "full":
        return FullBatch(model, loss, world)
    if strategy == "accumulation":
        return Accumulation(model, loss, micro_batch_size or batch_size, world)
    if strategy == "gradcache":
        return GradCache(model, loss, chunk_size or batch_size, world=world)
    raise ValueError(f"unknown step strategy {strategy!r}")
