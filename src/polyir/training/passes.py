"""A batch's texts in forward passes of similar length, already on the device: little compute goes to padding,
and the host has copied every input before the first pass, so it never waits for the GPU inside a step.

One name throughout: `chunk_size` is the most texts a forward pass holds, `chunk_tokens` the most padded
positions (the bound that lets short queries go through in larger passes than passages)."""

from __future__ import annotations

import torch

from polyir.models.biencoder import BiEncoder
from polyir.models.padding import padded_width
from polyir.training.batch import Batch

CPU_CHUNK_SIZE = 64  # texts per forward pass of the full batch, on CPU
CUDA_CHUNK_SIZE = 256  # on a GPU, where small passes leave it waiting for Python to launch kernels


def default_chunk_size(device: torch.device) -> int:
    return CUDA_CHUNK_SIZE if device.type == "cuda" else CPU_CHUNK_SIZE


def forward_passes(lengths: list[int], chunk_size: int | None, chunk_tokens: int | None) -> list[slice]:
    """Consecutive runs of texts sorted longest first (`lengths`, padded), each of at most `chunk_size` texts and
    at most `chunk_tokens` positions (its first text's length times its number of texts), and at least one."""
    passes, start = [], 0
    while start < len(lengths):
        count = len(lengths) - start
        if chunk_size is not None:
            count = min(count, chunk_size)
        if chunk_tokens is not None:
            count = max(1, min(count, chunk_tokens // lengths[start]))
        passes.append(slice(start, start + count))
        start += count
    return passes


class ForwardPasses:
    """The model inputs of a batch's forward passes (longest first; queries apart from passages and negatives,
    whose lengths differ), and the permutations between their rows and the order of `Batch.texts`: `order`
    (pass row -> text) and `inverse` (text -> pass row). None for a bound means no limit."""

    def __init__(self, model: BiEncoder, batch: Batch, chunk_size: int | None, chunk_tokens: int | None = None):
        texts = batch.texts
        cuda = model.device.type == "cuda"
        order, self.inputs = [], []
        for segment in (range(len(batch)), range(len(batch), len(texts))):
            ordered = sorted(segment, key=lambda i: -len(texts[i]))
            lengths = [padded_width(len(texts[i]), model.pad_multiple) for i in ordered]
            self.inputs += [model.collate([texts[i] for i in ordered[run]])
                            for run in forward_passes(lengths, chunk_size, chunk_tokens)]
            order += ordered
        self.order = torch.tensor(order, pin_memory=cuda).to(model.device, non_blocking=cuda)
        self.inverse = torch.empty_like(self.order)
        self.inverse[self.order] = torch.arange(len(order), device=model.device)

    def embed(self, model: BiEncoder) -> torch.Tensor:
        """Every text's embedding, with a graph, in text order."""
        return torch.cat([model(**inputs) for inputs in self.inputs])[self.inverse]
