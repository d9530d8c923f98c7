"""Training batches drawn and tokenised one step ahead on a background thread, so that tokenising (M2M-100's
tokenizer is pure Python: about a second per large batch) overlaps the device's work on the current step instead
of adding to it."""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor

from polyir.distributed import World
from polyir.models.biencoder import BiEncoder
from polyir.training.batch import Batch
from polyir.training.sampling import BatchSampler, Pair


class BatchLoader:
    """`next()` gives a batch's pairs and this rank's share of it, tokenised; `position` is the sampler's state
    after the batches handed out so far (not after the one being prepared), which is what a checkpoint keeps.
    The thread tokenises with its own copy of the tokenizer, whose language setting is state."""

    def __init__(self, sampler: BatchSampler, model: BiEncoder, world: World, micro_batch_size: int | None = None):
        self.sampler, self.model, self.world, self.micro = sampler, model, world, micro_batch_size
        self.tokenizer = copy.deepcopy(model.tokenizer)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="polyir-tokenize")
        self.position = sampler.state_dict()
        self.ahead: tuple[list[Pair], Future] | None = None

    def _draw(self) -> tuple[list[Pair], Future]:
        pairs = self.sampler.next_batch()
        shares = self.world.shares(pairs, self.micro or len(pairs))
        return pairs, self.pool.submit(Batch.of, self.model, shares[self.world.rank], self.tokenizer,
                                       shares if self.world.distributed else None)

    def next(self) -> tuple[list[Pair], Batch]:
        pairs, future = self.ahead or self._draw()
        self.position = self.sampler.state_dict()
        self.ahead = self._draw()
        return pairs, future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
