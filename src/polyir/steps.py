"""The step strategies the comparison is about: how one batch of pairs becomes gradients.

- FullBatch: one forward and backward over the whole batch (memory grows with the batch).
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

from polyir.model import BiEncoder, Kind
from polyir.sampling import Pair

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


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


class StepStrategy:
    """Accumulates the gradient of one batch into the model's .grad and returns the batch loss."""

    def __init__(self, model: BiEncoder, loss: Loss):
        self.model, self.loss = model, loss

    def backward(self, pairs: list[Pair]) -> float:
        raise NotImplementedError


class FullBatch(StepStrategy):
    def backward(self, pairs: list[Pair]) -> float:
        embedded = Inputs.of(self.model, pairs).embed(self.model)
        loss = self.loss(embedded["query"], embedded["passage"], embedded["negative"])
        loss.backward()
        return loss.item()


class Accumulation(StepStrategy):
    def __init__(self, model: BiEncoder, loss: Loss, micro_batch_size: int):
        super().__init__(model, loss)
        self.micro_batch_size = micro_batch_size

    def backward(self, pairs: list[Pair]) -> float:
        total = 0.0
        for micro in _split(pairs, self.micro_batch_size):
            embedded = Inputs.of(self.model, micro).embed(self.model)
            loss = self.loss(embedded["query"], embedded["passage"], embedded["negative"]) * (len(micro) / len(pairs))
            loss.backward()
            total += loss.item()
        return total


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

    def __init__(self, model: BiEncoder, loss: Loss, chunk_size: int, replay_random_state: bool = True):
        super().__init__(model, loss)
        self.chunk_size, self.replay = chunk_size, replay_random_state

    def backward(self, pairs: list[Pair]) -> float:
        chunks = [Inputs.of(self.model, chunk) for chunk in _split(pairs, self.chunk_size)]
        states, cached = [], []
        with torch.no_grad():  # 1. embeddings without a graph
            for chunk in chunks:
                states.append(RandomState(self.model.device) if self.replay else None)
                cached.append(chunk.embed(self.model))
        after_first_pass = RandomState(self.model.device) if self.replay else None
        # 2. the full-batch loss on detached embeddings, differentiated with respect to them only
        reps = {kind: self._leaf(cached, kind) for kind in ("query", "passage", "negative")}
        loss = self.loss(reps["query"], reps["passage"], reps["negative"])
        loss.backward()
        offsets = {kind: 0 for kind in reps}
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
    def _leaf(cached: list[dict[str, torch.Tensor | None]], kind: str) -> torch.Tensor | None:
        parts = [c[kind] for c in cached if c[kind] is not None]
        return torch.cat(parts).float().requires_grad_() if parts else None


def make_step(strategy: str, model: BiEncoder, loss: Loss, batch_size: int, micro_batch_size: int | None = None,
              chunk_size: int | None = None) -> StepStrategy:
    if strategy == "full":
        return FullBatch(model, loss)
    if strategy == "accumulation":
        return Accumulation(model, loss, micro_batch_size or batch_size)
    if strategy == "gradcache":
        return GradCache(model, loss, chunk_size or batch_size)
    raise ValueError(f"unknown step strategy {strategy!r}")
