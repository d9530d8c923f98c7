"""The step strategies the comparison is about: how one batch of pairs becomes gradients.

- FullBatch: one graph over the whole batch (memory grows with the batch).
- Accumulation: k micro-batches, each its own contrastive problem with only its own in-batch negatives, their
  gradients averaged: NOT the gradient of the full batch (fewer negatives), the technique the question compares.
- GradCache (Gao et al. 2021): the exact full-batch gradient in bounded memory: embed every chunk without a graph,
  take the full-batch loss's gradient with respect to the embeddings (the representation cache), then re-embed
  each chunk with a graph and back-propagate embedding . cached gradient. When the model draws random numbers
  (dropout), the random state of each chunk's first pass is replayed in the second, so it draws the same masks.
- ContAccum (Kim, Lee, Kang, NeurIPS 2024): accumulation whose micro-batches also score against a memory bank of
  recent (detached) query and passage representations: K = B/b micro-steps of b pairs, each with b - 1 + M
  negatives per query for the cost of b; the banked queries are rows too, so the passage encoder's gradient does
  not outgrow the query encoder's (bank.py).

Every strategy encodes through `passes.ForwardPasses`, returns the loss as a tensor (so the host never waits for
the GPU inside a step), masks false negatives by one rule and counts the negatives each query saw where the loss
makes them (negatives.py; `audit` after each step)."""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

from polyir.config import StepConfig
from polyir.distributed import SINGLE, World
from polyir.models.biencoder import BiEncoder
from polyir.training.bank import MemoryBank
from polyir.training.batch import KINDS, Batch
from polyir.training.loss import InfoNCE
from polyir.training.memory import tokens_for_memory
from polyir.training.negatives import Audit
from polyir.training.passes import CPU_CHUNK_SIZE, ForwardPasses, default_chunk_size
from polyir.training.randomness import RandomState

log = logging.getLogger(__name__)


class StepStrategy:
    """Accumulates the gradient of one batch into the model's .grad and returns the batch loss as a tensor.

    `batch` is this process's share of a batch of `total` pairs; under data parallelism the contrastive problem
    spans every rank's embeddings, and the gradients summed over ranks (World.sum_gradients, once per optimiser
    step) equal those of one process holding the whole batch."""

    def __init__(self, model: BiEncoder, loss: InfoNCE, world: World = SINGLE):
        self.model, self.loss, self.world = model, loss, world
        self.audit = Audit()  # the negatives of the last step's queries

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What a checkpoint must keep for a resumed run to step as this one would (ContAccum: its bank)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def _gathered(self, local: dict[str, torch.Tensor | None], batch: Batch, differentiable: bool
                  ) -> tuple[dict[str, torch.Tensor | None], dict[str, int]]:
        """Every rank's embeddings per kind, and where this rank's rows of each kind begin among them."""
        out, starts = {}, {}
        for kind, value in local.items():
            if value is None:
                value = local["query"].new_zeros(0, local["query"].shape[1])
            gathered, starts[kind] = self.world.gather(value, differentiable, batch.rows(kind))
            out[kind] = gathered if len(gathered) else None
        return out, starts

    def _contrastive(self, local: dict[str, torch.Tensor | None], batch: Batch, total: int) -> torch.Tensor:
        """This rank's rows of the loss against every rank's candidates (the audit counts this rank's queries)."""
        embedded, starts = self._gathered(local, batch, differentiable=True)
        rows = slice(starts["query"], starts["query"] + len(local["query"]))
        meta = batch.meta(self.model.device)
        return self.loss(embedded["query"], embedded["passage"], embedded["negative"], rows, total,
                         (meta["query"], meta["passage"], meta["negative"]), self.audit)


class FullBatch(StepStrategy):
    """One graph over the whole batch, built in forward passes of `chunk_size` texts of similar length (default:
    `passes.default_chunk_size`: larger on a GPU, where small passes leave it waiting for Python to launch
    kernels, and the memory, which holds every pass's activations until the backward pass, barely changes)."""

    def __init__(self, model: BiEncoder, loss: InfoNCE, world: World = SINGLE, chunk_size: int | None = None):
        super().__init__(model, loss, world)
        self.chunk_size = chunk_size or default_chunk_size(model.device)

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        self.audit = Audit()
        passes = ForwardPasses(self.model, batch, self.chunk_size)
        loss = self._contrastive(batch.kinds(passes.embed(self.model)), batch, total or len(batch))
        loss.backward()
        self.audit.summed(self.world)
        return self.world.sum(loss.detach())


class Accumulation(StepStrategy):
    """`micro_batch_size` is global: under data parallelism each rank holds its share of every micro-batch, whose
    texts go through the encoder in forward passes of `chunk_size` (default: a micro-batch's share)."""

    def __init__(self, model: BiEncoder, loss: InfoNCE, micro_batch_size: int, world: World = SINGLE,
                 chunk_size: int | None = None):
        super().__init__(model, loss, world)
        self.micro_batch_size, self.chunk_size = micro_batch_size, chunk_size

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        self.audit = Audit()
        share = self.micro_batch_size // self.world.size
        micros = batch.split(share)
        passes = [ForwardPasses(self.model, micro, self.chunk_size or share) for micro in micros]
        value = torch.zeros((), device=self.model.device)
        for micro, micro_passes in zip(micros, passes):
            loss = self._micro_step(micro.kinds(micro_passes.embed(self.model)), micro, total or len(batch))
            loss.backward()
            value = value + loss.detach()
        self.audit.summed(self.world)
        return self.world.sum(value)

    def _micro_step(self, local: dict[str, torch.Tensor | None], micro: Batch, total: int) -> torch.Tensor:
        return self._contrastive(local, micro, total)


class GradCache(StepStrategy):
    """`chunk_size` texts per forward pass, and at most `chunk_tokens` positions per pass when given; or
    `chunk_size="auto"`: passes of as many positions as fit in the GPU memory left (or in `memory_gib`, the whole
    step's budget), measured once on the first batch, so that queries go through in passes of several times more
    texts than passages; on CPU, "auto" is CPU_CHUNK_SIZE texts. `replay_random_state` defaults to whether the
    model draws random numbers (dropout) in its current mode."""

    def __init__(self, model: BiEncoder, loss: InfoNCE, chunk_size: int | str | None,
                 replay_random_state: bool | None = None, world: World = SINGLE, memory_gib: float | None = None,
                 chunk_tokens: int | None = None):
        super().__init__(model, loss, world)
        self.chunk_size, self.chunk_tokens = chunk_size, chunk_tokens
        self.replay, self.memory_gib = replay_random_state, memory_gib

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        self.audit = Audit()  # every rank computes every row: its audit is the whole batch's already
        if self.chunk_size == "auto":
            self.chunk_size, self.chunk_tokens = self._auto_chunk(batch.texts)
        replay = self.model.draws_random_numbers if self.replay is None else self.replay
        passes = ForwardPasses(self.model, batch, self.chunk_size, self.chunk_tokens)
        states, first = [], []
        with torch.no_grad():  # 1. embeddings without a graph
            for inputs in passes.inputs:
                states.append(RandomState(self.model.device) if replay else None)
                first.append(self.model(**inputs))
        # 2. the whole batch's loss (every rank's embeddings, gathered once) on detached embeddings,
        #    differentiated with respect to them only; each rank keeps the gradient of its own rows
        local = batch.kinds(torch.cat(first).float()[passes.inverse])
        gathered, starts = self._gathered(local, batch, differentiable=False)
        reps = {kind: None if value is None else value.requires_grad_() for kind, value in gathered.items()}
        meta = batch.meta(self.model.device)
        loss = self.loss(reps["query"], reps["passage"], reps["negative"], slice(0, len(reps["query"])),
                         total or len(batch), (meta["query"], meta["passage"], meta["negative"]), self.audit)
        loss.backward()
        cached = torch.cat([reps[kind].grad[starts[kind]:starts[kind] + len(local[kind])]
                            for kind in KINDS if local[kind] is not None])[passes.order]
        # 3. re-embed each chunk with a graph, replaying its random state, and push the cached gradient through
        offset = 0
        for inputs, state in zip(passes.inputs, states):
            size = len(inputs["input_ids"])
            with state.replayed() if state is not None else nullcontext():
                (self.model(**inputs).float() * cached[offset:offset + size]).sum().backward()
            offset += size
        return loss.detach()

    def _auto_chunk(self, texts: list[list[int]]) -> tuple[int | None, int | None]:
        """(texts, positions) per forward pass."""
        if self.model.device.type != "cuda":
            return CPU_CHUNK_SIZE, None
        tokens = tokens_for_memory(self.model, texts, self.memory_gib)
        if self.world.main:
            log.info("gradcache: chunk auto = %d positions per forward pass", tokens)
        return None, tokens


class ContAccum(Accumulation):
    """Accumulation with a memory bank of `bank_size` query and passage representations (`dual=False`: passages
    only). In each micro-step, this micro-batch's queries and the banked queries are the rows, this micro-batch's
    passages, the banked passages and the hard negatives the candidates (a banked query's positive is its banked
    passage); the micro-step's representations are then enqueued. A micro-step's loss is the sum over its rows
    divided by K × (b + banked query rows), so that with an empty bank it is naive accumulation's exactly. The
    bank persists across optimiser steps (its entries age) and is part of the checkpoint."""

    def __init__(self, model: BiEncoder, loss: InfoNCE, micro_batch_size: int, bank_size: int, dual: bool = True,
                 world: World = SINGLE, chunk_size: int | None = None):
        super().__init__(model, loss, micro_batch_size, world, chunk_size)
        self.bank = MemoryBank(bank_size, dual)
        self.steps = 0  # optimiser steps taken: the clock the bank's ages are read on

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        value = super().backward(batch, total)
        self.steps += 1
        return value

    def _micro_step(self, local: dict[str, torch.Tensor | None], micro: Batch, total: int) -> torch.Tensor:
        embedded, starts = self._gathered(local, micro, differentiable=True)
        meta = micro.meta(self.model.device)
        banked_queries, banked_passages, banked_query_meta, banked_passage_meta = self.bank.read(
            self.steps, self.model.device)
        queries, query_meta = embedded["query"], meta["query"]
        passages, passage_meta = embedded["passage"], meta["passage"]
        local_rows = torch.arange(starts["query"], starts["query"] + len(local["query"]), device=queries.device)
        rows, banked_rows = local_rows, 0
        if banked_passages is not None:  # the bank is float32, like the loss; autocast may give bf16 embeddings
            passages = torch.cat([passages.float(), banked_passages])
            passage_meta = torch.cat([passage_meta, banked_passage_meta])
        if banked_queries is not None:  # each rank takes its share of the banked rows, so that their sum is one
            banked_rows = len(banked_queries)
            mine = torch.arange(len(queries) + self.world.rank, len(queries) + banked_rows, self.world.size,
                                device=queries.device)
            queries = torch.cat([queries.float(), banked_queries])
            query_meta = torch.cat([query_meta, banked_query_meta])
            rows = torch.cat([local_rows, mine])
        steps = -(-total // self.micro_batch_size)  # K
        loss = self.loss(queries, passages, embedded["negative"], rows, steps * (len(embedded["query"]) + banked_rows),
                         (query_meta, passage_meta, meta["negative"]), self.audit)
        self.bank.push(embedded["query"], embedded["passage"], meta["query"], meta["passage"], self.steps)
        return loss

    def state_dict(self) -> dict:
        return {"bank": self.bank.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.bank.load_state_dict(state["bank"], self.model.device)
        self.steps = state["steps"]


def make_step(config: StepConfig, model: BiEncoder, loss: InfoNCE, world: World = SINGLE) -> StepStrategy:
    """The strategy a step configuration names (config.StepName)."""
    if config.strategy == "full":
        return FullBatch(model, loss, world, config.chunk_size)
    if config.strategy == "accumulation":
        return Accumulation(model, loss, config.micro_batch_size, world, config.chunk_size)
    if config.strategy == "contaccum":
        return ContAccum(model, loss, config.micro_batch_size, config.bank_size, config.bank == "dual", world,
                         config.chunk_size)
    return GradCache(model, loss, config.chunk_size or "auto", world=world, memory_gib=config.memory_gib)
