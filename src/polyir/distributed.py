"""Data parallelism on the standard engine: torch.distributed, launched by `torchrun` or `accelerate launch`
(both set RANK, WORLD_SIZE and LOCAL_RANK). NCCL on GPUs, gloo on CPU. One process without those variables is a
world of one, and every collective here is then the identity."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

from polyir.config import StepConfig
from polyir.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shares(self, items: list[T], unit: int) -> list[list[T]]:
        """Every rank's share of a global batch, in rank order: from every block of `unit` consecutive items (a
        micro-batch under naive accumulation, else the whole batch) the rank-th of `size` equal slices. Every rank
        builds the same global batch from the same seed, so an X-X-mono batch has one language on every rank."""
        width = unit // self.size
        return [[item for start in range(0, len(items), unit)
                 for item in items[start + rank * width:start + (rank + 1) * width]] for rank in range(self.size)]

    def check_divides(self, step: StepConfig) -> None:
        """Every rank takes an equal share of each batch (and of each micro-batch): say so before training."""
        if step.batch_size % self.size:
            raise InputError(f"step.batch_size {step.batch_size} must be a multiple of the {self.size} processes")
        micro = step.micro_batch_size
        if step.strategy in ("accumulation", "contaccum") and self.size > 1 and (micro % self.size or
                                                                                step.batch_size % micro):
            raise InputError(f"step.micro_batch_size {micro} must divide step.batch_size and be a multiple of the "
                             f"{self.size} processes")

    def gather(self, tensor: torch.Tensor, differentiable: bool, counts: list[int] | None = None
               ) -> tuple[torch.Tensor, int]:
        """All ranks' rows concatenated in rank order, and where this rank's rows start. Ranks may hold different
        numbers of rows (even none); `differentiable` lets gradients flow back to every rank's rows. `counts`,
        every rank's number of rows when the caller knows them, spares exchanging them (a host wait)."""
        if not self.distributed:
            return tensor, 0
        if counts is None:
            exchanged = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(self.size)]
            dist.all_gather(exchanged, torch.tensor([tensor.shape[0]], device=tensor.device))
            counts = [int(c) for c in exchanged]
        if counts[self.rank] != tensor.shape[0]:
            raise ValueError(f"rank {self.rank} holds {tensor.shape[0]} rows, not the {counts[self.rank]} expected")
        padded = torch.cat([tensor, tensor.new_zeros(max(counts) - tensor.shape[0], *tensor.shape[1:])])
        if differentiable:
            parts = dist_nn.all_gather(padded)
        else:
            parts = [torch.empty_like(padded) for _ in range(self.size)]
            dist.all_gather(parts, padded)
        return torch.cat([part[:count] for part, count in zip(parts, counts)]), sum(counts[:self.rank])

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of a tensor on this rank's device (no host synchronisation)."""
        if not self.distributed:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total

    def sum_gradients(self, parameters) -> None:
        """One all-reduce (sum) of every gradient, once per optimiser step, flattened into a single buffer."""
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


SINGLE = World()


def init_world() -> World:
    """Join the process group that torchrun / accelerate describe in the environment, or stay a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return SINGLE
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world
