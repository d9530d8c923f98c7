"""bf16 compute weights over float32 master weights (`precision: bf16-weights`). Autocast keeps float32 weights, layer
norms and residual stream, and casts activations to bf16 before every projection, a large share of a training step's
device time on a GPU. Here forward and backward run on a bf16 copy of the encoder, with no casts and bf16
activations throughout. Each gradient is added into its float32 master parameter as soon as backward produces it, so
the sums of GradCache's and accumulation's passes stay in float32; the optimiser updates the masters, and the copy
is refreshed from them. Saving, checkpoints, clipping and data parallelism see only the float32 masters."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ComputeCopy:
    """A copy of `master` in `dtype` (on master's device) that runs the forward and backward passes."""

    def __init__(self, master: nn.Module, dtype: torch.dtype = torch.bfloat16):
        self.module = copy.deepcopy(master).to(dtype)
        self.module.train(master.training)
        self.module.zero_grad(set_to_none=True)  # deepcopy copies gradients too; the masters keep theirs
        self.pairs = list(zip(master.parameters(), self.module.parameters()))
        for master_parameter, parameter in self.pairs:
            parameter.requires_grad_(master_parameter.requires_grad)
            if parameter.requires_grad:
                parameter.register_post_accumulate_grad_hook(_into(master_parameter))

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the master weights in (after each optimiser step, and after loading a checkpoint)."""
        for master_parameter, parameter in self.pairs:
            parameter.copy_(master_parameter)


def _into(master: nn.Parameter):
    """A hook that moves a parameter's fresh gradient into `master.grad`, in float32."""
    def move(parameter: torch.Tensor) -> None:
        if master.grad is None:
            master.grad = parameter.grad.to(master.dtype)
        else:
            master.grad.add_(parameter.grad)
        parameter.grad = None
    return move
