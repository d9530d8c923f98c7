"""Weight interpolation of two models of one architecture (WiSE-FT, Wortsman et al. 2022; what LM-Cocktail does
for embedders): (1 − w)·A + w·B, tensor by tensor.

What it protects: with A the starting model and B a fine-tuned one, a weight below 1 gives back part of what
fine-tuning took from languages it never trained on (the starting model's knowledge), usually for part of the gain
where it trained; evaluating a few weights draws the trade-off as a curve. What it costs: nothing in training, one
evaluation per weight. Weights 0 and 1 give A and B bit for bit (torch.lerp)."""

from __future__ import annotations

import torch

from polyir.errors import InputError
from polyir.models.biencoder import BiEncoder


def interpolate(a: BiEncoder, b: BiEncoder, weight: float) -> BiEncoder:
    """B with every floating-point tensor replaced by (1 − weight)·A + weight·B (integer buffers must agree); the
    result keeps B's tokenizer and settings. `weight` in [0, 1]."""
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"--weight must lie in [0, 1] (the share of the second model), got {weight}")
    first, second = a.backbone.state_dict(), b.backbone.state_dict()
    if first.keys() != second.keys():
        only = sorted(first.keys() ^ second.keys())
        raise InputError(f"the two models are not of one architecture: {len(only)} tensors are in one only "
                         f"({', '.join(only[:3])})")
    if len(a.tokenizer) != len(b.tokenizer):
        raise InputError(f"the two models' tokenizers differ ({len(a.tokenizer)} and {len(b.tokenizer)} tokens)")
    merged = {}
    for name, x in first.items():
        y = second[name]
        if x.shape != y.shape:
            raise InputError(f"the two models are not of one architecture: {name} is {tuple(x.shape)} in one and "
                             f"{tuple(y.shape)} in the other")
        if x.is_floating_point():
            merged[name] = torch.lerp(x.to(y.dtype), y, weight)
        elif torch.equal(x, y):
            merged[name] = y
        else:
            raise InputError(f"the two models' {name} differ, and it cannot be interpolated (not floating point)")
    b.backbone.load_state_dict(merged)
    if b.compute is not None:
        b.compute.refresh()
    return b
