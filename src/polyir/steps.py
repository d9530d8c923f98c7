"""The step strategies the comparison is about: how one batch of pairs becomes gradients.

- FullBatch: one graph over the whole batch (memory grows with the batch).
- Accumulation: k micro-batches, each its own contrastive problem with only its own in-batch negatives, their
  gradients averaged: NOT the gradient of the full batch (fewer negatives), the technique the question compares.
- GradCache (Gao et al. 2021): the exact full-batch gradient in bounded memory: embed every chunk without a graph,
  take the full-batch loss's gradient with respect to the embeddings (the representation cache), then re-embed
  each chunk with a graph and back-propagate embedding . cached gradient. When the model draws random numbers
  (dropout), the random state of each chunk's first pass is replayed in the second, so it draws the same masks.

The encoder sees a batch's texts in groups of similar length (queries apart from passages and negatives), so that
little compute goes to padding; the loss sees them in pair order again. Every input reaches the device before the
first forward pass and the loss comes back as a tensor, so the host never waits for the GPU inside a step."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from polyir.distributed import SINGLE, World
from polyir.model import BiEncoder
from polyir.padding import padded_width
from polyir.sampling import Pair

# (queries, passages, negatives, rows, denominator) -> loss; see polyir.loss.info_nce
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, slice, int], torch.Tensor]
KINDS = ("query", "passage", "negative")
DEFAULT_GROUP = 64  # texts per forward pass of the full batch, on CPU
CUDA_GROUP = 256  # on a GPU: 1.73x the speed of 64 texts per pass for M2M-100 418M on an H200 (bench/RESULTS.md)


@dataclass
class Batch:
    """One step's pairs as token ids, tokenised once: a query and a passage per pair, and a hard negative where
    the pair has one. Under data parallelism, `ranks` says which pairs of every rank's share have a negative: the
    row counts of every rank, known without asking the other ranks (which would make the host wait)."""

    queries: list[list[int]]
    passages: list[list[int]]
    negatives: list[list[int] | None]
    ranks: list[list[bool]] | None = None

    @classmethod
    def of(cls, model: BiEncoder, pairs: list[Pair], tokenizer=None, ranks: list[list[bool]] | None = None) -> Batch:
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
        """Queries, then passages, then the negatives that exist: the order of `kinds`."""
        return self.queries + self.passages + [n for n in self.negatives if n is not None]

    def kinds(self, embeddings: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Embeddings in the order of `texts`, cut into queries, passages and negatives (None when none)."""
        n = len(self)
        return {"query": embeddings[:n], "passage": embeddings[n:2 * n],
                "negative": embeddings[2 * n:] if len(embeddings) > 2 * n else None}


class Groups:
    """A batch's texts in forward passes of similar length (longest first; queries apart from passages and
    negatives, whose lengths differ), already on the device, and the permutation that puts their embeddings back
    in the order of `Batch.texts`. A pass holds at most `size` texts (None: no limit) and at most `max_tokens`
    positions once padded (None: no limit), so that short queries go through in larger passes than passages."""

    def __init__(self, model: BiEncoder, batch: Batch, size: int | None, max_tokens: int | None = None):
        texts = batch.texts
        cuda = model.device.type == "cuda"
        order, self.inputs = [], []
        for segment in (range(len(batch)), range(len(batch), len(texts))):
            ordered = sorted(segment, key=lambda i: -len(texts[i]))
            lengths = [padded_width(len(texts[i]), model.pad_multiple) for i in ordered]
            self.inputs += [model.collate([texts[i] for i in ordered[run]])
                            for run in forward_passes(lengths, size, max_tokens)]
            order += ordered
        self.order = torch.tensor(order, pin_memory=cuda).to(model.device, non_blocking=cuda)
        self.inverse = torch.empty_like(self.order)
        self.inverse[self.order] = torch.arange(len(order), device=model.device)

    def embed(self, model: BiEncoder) -> torch.Tensor:
        """Every text's embedding, with a graph, in text order."""
        return torch.cat([model(**inputs) for inputs in self.inputs])[self.inverse]


def forward_passes(lengths: list[int], size: int | None, max_tokens: int | None) -> list[slice]:
    """Consecutive runs of texts sorted longest first (`lengths`, padded), each of at most `size` texts and at
    most `max_tokens` positions (its first text's length times its number of texts), and at least one text."""
    passes, start = [], 0
    while start < len(lengths):
        count = len(lengths) - start
        if size is not None:
            count = min(count, size)
        if max_tokens is not None:
            count = max(1, min(count, max_tokens // lengths[start]))
        passes.append(slice(start, start + count))
        start += count
    return passes


class StepStrategy:
    """Accumulates the gradient of one batch into the model's .grad and returns the batch loss as a tensor.

    `batch` is this process's share of a batch of `total` pairs; under data parallelism the contrastive problem
    spans every rank's embeddings, and the gradients summed over ranks (World.sum_gradients, once per optimiser
    step) equal those of one process holding the whole batch."""

    def __init__(self, model: BiEncoder, loss: Loss, world: World = SINGLE):
        self.model, self.loss, self.world = model, loss, world

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        raise NotImplementedError

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
        embedded, starts = self._gathered(local, batch, differentiable=True)
        rows = slice(starts["query"], starts["query"] + len(local["query"]))
        return self.loss(embedded["query"], embedded["passage"], embedded["negative"], rows, total)


class FullBatch(StepStrategy):
    """One graph over the whole batch, built in forward passes of `group_size` texts of similar length (default:
    DEFAULT_GROUP on CPU; CUDA_GROUP on a GPU, where small passes leave it waiting for Python to launch kernels,
    and the memory, which holds every pass's activations until the backward pass, barely changes)."""

    def __init__(self, model: BiEncoder, loss: Loss, world: World = SINGLE, group_size: int | None = None):
        super().__init__(model, loss, world)
        self.group_size = group_size or (CUDA_GROUP if model.device.type == "cuda" else DEFAULT_GROUP)

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        groups = Groups(self.model, batch, self.group_size)
        loss = self._contrastive(batch.kinds(groups.embed(self.model)), batch, total or len(batch))
        loss.backward()
        return self.world.sum(loss.detach())


class Accumulation(StepStrategy):
    """`micro_batch_size` is global: under data parallelism each rank holds its share of every micro-batch, whose
    texts go through the encoder in forward passes of `group_size` (default: a micro-batch's share)."""

    def __init__(self, model: BiEncoder, loss: Loss, micro_batch_size: int, world: World = SINGLE,
                 group_size: int | None = None):
        super().__init__(model, loss, world)
        self.micro_batch_size, self.group_size = micro_batch_size, group_size

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        share = self.micro_batch_size // self.world.size
        micros = batch.split(share)
        groups = [Groups(self.model, micro, self.group_size or share) for micro in micros]
        value = torch.zeros((), device=self.model.device)
        for micro, group in zip(micros, groups):
            loss = self._contrastive(micro.kinds(group.embed(self.model)), micro, total or len(batch))
            loss.backward()
            value = value + loss.detach()
        return self.world.sum(value)


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
    """`chunk_size` texts per forward pass, and at most `chunk_tokens` positions per pass when given; or
    `chunk_size="auto"`: passes of as many positions as fit in the GPU memory left (or in `memory_gib`, the whole
    step's budget), measured once on the first batch, so that queries go through in passes of several times more
    texts than passages; on CPU, "auto" is DEFAULT_GROUP texts. `replay_random_state` defaults to whether the
    model draws random numbers (dropout) in its current mode."""

    def __init__(self, model: BiEncoder, loss: Loss, chunk_size: int | str | None,
                 replay_random_state: bool | None = None, world: World = SINGLE, memory_gib: float | None = None,
                 chunk_tokens: int | None = None):
        super().__init__(model, loss, world)
        self.chunk_size, self.chunk_tokens = chunk_size, chunk_tokens
        self.replay, self.memory_gib = replay_random_state, memory_gib

    def backward(self, batch: Batch, total: int | None = None) -> torch.Tensor:
        if self.chunk_size == "auto":
            self.chunk_size, self.chunk_tokens = self._auto_chunk(batch.texts)
        replay = self.model.draws_random_numbers if self.replay is None else self.replay
        groups = Groups(self.model, batch, self.chunk_size, self.chunk_tokens)
        states, first = [], []
        with torch.no_grad():  # 1. embeddings without a graph
            for inputs in groups.inputs:
                states.append(RandomState(self.model.device) if replay else None)
                first.append(self.model(**inputs))
        after_first_pass = RandomState(self.model.device) if replay else None
        # 2. the whole batch's loss (every rank's embeddings, gathered once) on detached embeddings,
        #    differentiated with respect to them only; each rank keeps the gradient of its own rows
        local = batch.kinds(torch.cat(first).float()[groups.inverse])
        gathered, starts = self._gathered(local, batch, differentiable=False)
        reps = {kind: None if value is None else value.requires_grad_() for kind, value in gathered.items()}
        loss = self.loss(reps["query"], reps["passage"], reps["negative"], slice(0, len(reps["query"])),
                         total or len(batch))
        loss.backward()
        cached = torch.cat([reps[kind].grad[starts[kind]:starts[kind] + len(local[kind])]
                            for kind in KINDS if local[kind] is not None])[groups.order]
        # 3. re-embed each chunk with a graph, replaying its random state, and push the cached gradient through
        offset = 0
        for inputs, state in zip(groups.inputs, states):
            if state is not None:
                state.restore()
            size = len(inputs["input_ids"])
            (self.model(**inputs).float() * cached[offset:offset + size]).sum().backward()
            offset += size
        if after_first_pass is not None:
            after_first_pass.restore()
        return loss.detach()

    def _auto_chunk(self, texts: list[list[int]]) -> tuple[int | None, int | None]:
        """(texts, positions) per forward pass."""
        if self.model.device.type != "cuda":
            return DEFAULT_GROUP, None
        tokens = tokens_for_memory(self.model, texts, self.memory_gib)
        if self.world.main:
            print(f"gradcache: chunk auto = {tokens} positions per forward pass", file=sys.stderr)
        return None, tokens


def _activation_bytes_per_position(model: BiEncoder, texts: list[list[int]], probe: int = 16) -> float:
    """Peak GPU memory of one forward and backward pass per padded position, over the `probe` longest texts;
    measured on a second pass, after the first has allocated the gradient buffers. Gradients and random state
    are left as they were."""
    parameters = [p for p in model.encoder.parameters() if p.requires_grad]
    grads = [p.grad for p in parameters]
    for parameter in parameters:  # set aside: gradients may be summed into in place (precision.ComputeCopy)
        parameter.grad = None
    state = RandomState(model.device)
    inputs = model.collate(sorted(texts, key=len, reverse=True)[:probe])
    model(**inputs).float().sum().backward()
    torch.cuda.synchronize(model.device)
    base = torch.cuda.memory_allocated(model.device)
    torch.cuda.reset_peak_memory_stats(model.device)
    model(**inputs).float().sum().backward()
    peak = torch.cuda.max_memory_allocated(model.device)
    for parameter, grad in zip(parameters, grads):
        parameter.grad = grad
    state.restore()
    return (peak - base) / inputs["input_ids"].numel()


def tokens_for_memory(model: BiEncoder, texts: list[list[int]], memory_gib: float | None = None,
                      fraction: float = 0.9) -> int:
    """The most padded positions per forward pass (at least 8 of the longest texts) whose forward and backward
    pass fits in `fraction` of the GPU memory still free, or of what is left of a `memory_gib` budget for the whole
    step. Activation memory grows with the positions a pass holds, whatever their split into texts (attention is
    memory-efficient). Room is kept for the fp32 gradients and AdamW's two moment buffers, which the step and the
    first optimiser step allocate (counted twice once they exist: the estimate errs on the small side)."""
    device = model.device
    per_position = _activation_bytes_per_position(model, texts)
    allocated = torch.cuda.memory_allocated(device)
    free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device) - allocated
    gradients_and_moments = sum(3 * p.numel() * 4 for p in model.encoder.parameters() if p.requires_grad)
    room = free if memory_gib is None else min(free, memory_gib * 2**30 - allocated)
    longest = padded_width(max(map(len, texts)), model.pad_multiple)
    return max(8 * longest, int(fraction * (room - gradients_and_moments) / per_position))


def make_step(strategy: str, model: BiEncoder, loss: Loss, batch_size: int, micro_batch_size: int | None = None,
              chunk_size: int | str | None = None, world: World = SINGLE,
              memory_gib: float | None = None) -> StepStrategy:
    if strategy == "full":
        return FullBatch(model, loss, world, chunk_size)
    if strategy == "accumulation":
        return Accumulation(model, loss, micro_batch_size or batch_size, world, chunk_size)
    if strategy == "gradcache":
        return GradCache(model, loss, chunk_size or "auto", world=world, memory_gib=memory_gib)
    raise ValueError(f"unknown step strategy {strategy!r}")
