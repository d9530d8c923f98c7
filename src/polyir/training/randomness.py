"""Random generator states: captured to replay a forward pass with the same dropout (GradCache's second pass),
and saved whole in checkpoints so that a resumed run draws what the uninterrupted one would have."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class RandomState:
    """The CPU generator's state and, on CUDA, the model device's."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def replayed(self) -> Iterator[None]:
        """Run the block from this state; after it the generators are as they were before it
        (`torch.random.fork_rng`), so replaying a pass takes nothing from the random stream."""
        with torch.random.fork_rng(devices=[self.device] if self.cuda is not None else []):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def generator_states() -> dict:
    """Every generator a training run draws from: Python's (the sampler's shuffles), PyTorch's CPU and CUDA."""
    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_generator_states(states: dict) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
