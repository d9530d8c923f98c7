"""Memory probing: how many padded positions a GradCache forward pass may hold on a GPU, and a run's peak memory
(GPU allocations, or the process's resident set on CPU)."""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from polyir.models.biencoder import BiEncoder
from polyir.models.padding import padded_width


def activation_bytes_per_position(model: BiEncoder, texts: list[list[int]], probe: int = 16) -> float:
    """Peak GPU memory of one forward and backward pass per padded position, over the `probe` longest texts;
    measured on a second pass, after the first has allocated the gradient buffers. Gradients and random state
    are left as they were."""
    parameters = [p for p in model.encoder.parameters() if p.requires_grad]
    grads = [p.grad for p in parameters]
    for parameter in parameters:  # set aside: gradients may be summed into in place (precision.ComputeCopy)
        parameter.grad = None
    inputs = model.collate(sorted(texts, key=len, reverse=True)[:probe])
    with torch.random.fork_rng(devices=[model.device]):
        model(**inputs).float().sum().backward()
        torch.cuda.synchronize(model.device)
        base = torch.cuda.memory_allocated(model.device)
        torch.cuda.reset_peak_memory_stats(model.device)
        model(**inputs).float().sum().backward()
        peak = torch.cuda.max_memory_allocated(model.device)
    for parameter, grad in zip(parameters, grads):
        parameter.grad = grad
    return (peak - base) / inputs["input_ids"].numel()


def tokens_for_memory(model: BiEncoder, texts: list[list[int]], memory_gib: float | None = None,
                      fraction: float = 0.9) -> int:
    """The most padded positions per forward pass (at least 8 of the longest texts) whose forward and backward
    pass fits in `fraction` of the GPU memory still free, or of what is left of a `memory_gib` budget for the whole
    step. Activation memory grows with the positions a pass holds, whatever their split into texts (attention is
    memory-efficient). Room is kept for the fp32 gradients and AdamW's two moment buffers, which the step and the
    first optimiser step allocate (counted twice once they exist: the estimate errs on the small side)."""
    device = model.device
    per_position = activation_bytes_per_position(model, texts)
    allocated = torch.cuda.memory_allocated(device)
    free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device) - allocated
    gradients_and_moments = sum(3 * p.numel() * 4 for p in model.encoder.parameters() if p.requires_grad)
    room = free if memory_gib is None else min(free, memory_gib * 2**30 - allocated)
    longest = padded_width(max(map(len, texts)), model.pad_multiple)
    return max(8 * longest, int(fraction * (room - gradients_and_moments) / per_position))


def reset_peak_memory(device: torch.device) -> None:
    """Start a run's peak-memory count afresh (several runs may share a process, as in `polyir compare`)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # Linux: resets the peak resident set size (VmHWM)
        except OSError:
            pass


def peak_memory_gib(device: torch.device) -> float:
    """Peak GPU memory allocated, or on CPU the process's peak resident memory since the last reset."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 2**20
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
