"""Data parallelism on the standard engine: torch.distributed, launched by `torchrun` or `accelerate launch`
(both set RANK, WORLD_SIZE and LOCAL_RANK). NCCL on GPUs, gloo on CPU. One process without those variables is a
world of one, and every collective here is then the identity."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


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
