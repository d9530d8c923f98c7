"""Token-id rows padded into one batch tensor, in one vectorised pass. Hugging Face's `tokenizer.pad` walks the
rows in Python, host time in which the GPU has nothing to do at large batches."""

from __future__ import annotations

import itertools

import numpy as np
import torch


def padded_width(length: int, multiple_of: int | None) -> int:
    """`length` rounded up to a multiple of `multiple_of` (unchanged without one)."""
    return -(-length // multiple_of) * multiple_of if multiple_of else length


def pad_token_ids(ids: list[list[int]], pad_id: int, left: bool = False, multiple_of: int | None = None,
                  pin_memory: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 input ids and attention mask (1 = token, 0 = padding) as `tokenizer.pad` gives them: every row
    padded with `pad_id`, on the `left` or the right, to the longest row rounded up to `multiple_of`. With
    `pin_memory`, both are written straight into page-locked memory (for non-blocking copies to the GPU)."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    width = padded_width(int(lengths.max(initial=0)), multiple_of)
    columns = np.arange(width)
    tokens = columns >= width - lengths[:, None] if left else columns < lengths[:, None]
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long, pin_memory=pin_memory)
    input_ids.numpy()[tokens] = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64,
                                            count=int(lengths.sum()))  # row by row, left to right
    attention_mask = torch.empty((len(ids), width), dtype=torch.long, pin_memory=pin_memory)
    attention_mask.numpy()[:] = tokens
    return input_ids, attention_mask
