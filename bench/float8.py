"""FP8 linear layers for encoding (bench only, until a GPU measures that they pay; RESULTS.md).

Only FP8 matrix products could take encoding past issue 6's 20,000 passages/s (RESULTS.md, "What the targets ask
of the card"). `to_float8` replaces each nn.Linear of a bf16 model by one that quantises its input (dynamically,
per token or per tensor) and its weight (once, per output row or per tensor) to float8 e4m3 with the scale
amax / 448, and multiplies them with torch._scaled_mm: float32 accumulation, bias added, bf16 out. This is the
recipe of torchao's dynamic float8 inference; torch._scaled_mm also runs on the CPU, so the quality of the very
same computation is measured where polyir is tested (bench/fp8_quality.py), and its speed on a Hopper GPU
(bench/gpu.py)."""

from __future__ import annotations

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = torch.finfo(E4M3).max  # 448


def quantise(x: torch.Tensor, rowwise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(x in e4m3, float32 scales of shape (rows, 1)) with x ~ e4m3 * scale, for a 2-D x: one scale per row, or one
    for the whole tensor repeated on every row (the same product; torch._scaled_mm's kernel for a single scale
    runs for seconds on the CPU, where its row-wise one takes milliseconds)."""
    amax = x.abs().amax(dim=-1, keepdim=True) if rowwise else x.abs().amax().expand(len(x), 1)
    scale = (amax.float() / E4M3_MAX).clamp(min=1e-12)
    return (x / scale).clamp_(-E4M3_MAX, E4M3_MAX).to(E4M3), scale  # in float32: a float32 scale promotes x


def fused_quantise():
    """`quantise` compiled, so that its steps fuse into one or two kernels per input (x read once or twice, e4m3
    written once: about 3 to 5 bytes per element); unfused, each step (abs, maximum, division, clamp, cast) passes
    over the activations again, about 25 bytes per element."""
    return torch.compile(quantise, dynamic=True)


class Float8Linear(nn.Module):
    """`linear` with e4m3 weights; inputs are quantised at each call by `quantiser` (`quantise`, or
    `fused_quantise()`). Output in bf16."""

    def __init__(self, linear: nn.Linear, rowwise: bool = True, quantiser=quantise):
        super().__init__()
        self.rowwise, self.quantiser = rowwise, quantiser
        weight, scale = quantise(linear.weight.detach(), rowwise)
        self.register_buffer("weight", weight)  # (out, in): its transpose is the column-major operand cuBLAS wants
        self.register_buffer("weight_scale", scale.t().contiguous())  # (1, out)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        quantised, scale = self.quantiser(rows, self.rowwise)
        out = torch._scaled_mm(quantised, self.weight.t(), scale_a=scale, scale_b=self.weight_scale, bias=self.bias,
                               out_dtype=torch.bfloat16)
        return out.reshape(*x.shape[:-1], out.shape[-1])


def to_float8(module: nn.Module, rowwise: bool = True, fused: bool = False) -> int:
    """Replace every nn.Linear under `module` in place (`fused`: quantising inputs with `fused_quantise`); returns
    how many were replaced."""
    quantiser = fused_quantise() if fused else quantise
    linears = [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]
    for parent, name, child in linears:
        setattr(parent, name, Float8Linear(child, rowwise, quantiser))
    return len(linears)
