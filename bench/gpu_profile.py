"""Where the time goes (not a test), at M2M-100 418M's shape through polyir's own code, to decide what to speed up
next: the device time of one GradCache step and of one encoding batch by kernel family (torch.profiler), and
whether torch.compile pays, for training once M2M-100's layer drop is off (its Python branch on a random number
breaks the compiled graph at every layer) and for encoding at one fixed shape.

  python bench/gpu_profile.py [--shape m2m100-418m|small|tiny] [--device cuda|cpu] [--parts kernels,compile,syncs]
                              [--batch 1024] [--chunk 176] [--out results.jsonl]

Same models, inputs and step as bench/gpu.py (random weights, queries <= 32 and passages <= 128 tokens, bf16
autocast and fused AdamW on CUDA). On CPU the profile groups the operators' own CPU time instead of kernels."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import traceback
from collections import defaultdict
from functools import partial
from pathlib import Path

import torch
from common import LOSS, PASSAGE, SHAPES, bi_encoder, fixed_ids, free_memory, random_batch, synchronize
from torch.profiler import ProfilerActivity, profile

from polyir.config import StepConfig
from polyir.training.steps import make_step

# Kernel (CUDA) or operator (CPU) names -> family, first match wins.
FAMILIES = [
    ("matrix products", r"gemm|gemv|nvjet|cutlass|xmma|cublas|aten::(addmm|mm|bmm|matmul)\b"),
    ("attention", r"flash|fmha|attention|sdpa"),
    ("layer norm", r"layer_?norm"),
    ("dropout", r"dropout|bernoulli|philox"),
    ("optimiser", r"adam|multi_tensor"),
    ("embedding", r"embedding|index|gather|scatter"),
    ("casts and copies", r"copy|convert|cast|_to_copy"),
    ("reductions", r"reduce|sum|mean|norm"),
    ("other element-wise", r"elementwise|vectorized|unrolled|add|mul|div|relu|clamp|gelu|where|fill|triton"),
]


def family(name: str) -> str:
    return next((label for label, pattern in FAMILIES if re.search(pattern, name, re.IGNORECASE)), "other")


def device_time_by_family(run, device: torch.device) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Milliseconds per family and the ten costliest kernels (operators on CPU) of one call of `run`."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        run()
        synchronize(device)
    events = prof.key_averages()
    if cuda:  # kernels; else the operators that launched them (never both: their times overlap)
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA] or events
    times: dict[str, float] = defaultdict(float)
    for event in events:
        spent = (event.self_device_time_total if cuda else event.self_cpu_time_total) / 1e3
        if spent > 0:
            times[event.key] += spent
    by_family: dict[str, float] = defaultdict(float)
    for name, spent in times.items():
        by_family[family(name)] += spent
    return dict(by_family), sorted(times.items(), key=lambda item: -item[1])[:10]


def train_step(model, batch_size: int, chunk, generator):
    """A GradCache step and its optimiser update, under autocast on CUDA, on a given batch or a fresh random one;
    and the step strategy (its chunk size once chosen)."""
    cuda = model.device.type == "cuda"
    step = make_step(StepConfig(strategy="gradcache", batch_size=batch_size, chunk_size=chunk), model, LOSS)
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=1e-5, fused=cuda)
    vocab = model.encoder.config.vocab_size

    def run(batch=None):
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=cuda):
            step.backward(batch or random_batch(batch_size, vocab, generator))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.train()
    return run, step


def timed(run, repeats: int, device: torch.device) -> tuple[float, float]:
    """Seconds of the first call (compilation included) and the median of `repeats` calls after it."""
    seconds = []
    for _ in range(repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds[0], statistics.median(seconds[1:])


def kernels(args, device, generator, record) -> None:
    shape = SHAPES[args.shape]
    model = bi_encoder("m2m100", shape, device)
    run, step = train_step(model, args.batch, args.chunk, generator)
    run()  # warm-up; "auto" picks its chunk here
    by_family, top = device_time_by_family(run, device)
    chunk = step.chunk_size or f"{step.chunk_tokens:,} positions"
    record({"part": "kernels", "name": f"gradcache step, batch {args.batch}, chunk {chunk}",
            "families_ms": by_family, "top_ms": top})
    ids = fixed_ids(args.batch, shape["vocab"], generator)
    for name, encoder in (("encode, float32 weights + autocast", model),
                          ("encode, bf16 weights", bi_encoder("m2m100", shape, device).to(torch.bfloat16))):
        encode = partial(encoder.encode_ids, ids, args.batch)
        encode()
        by_family, top = device_time_by_family(encode, device)
        record({"part": "kernels", "name": f"{name}, {args.batch} passages of {PASSAGE} tokens",
                "families_ms": by_family, "top_ms": top})


def time_training(args, device, generator, batches, compiled: bool) -> dict:
    model = bi_encoder("m2m100", SHAPES[args.shape], device)
    model.encoder.layerdrop = 0.0
    if compiled:
        model.compile_encoder()
    run, step = train_step(model, args.batch, args.chunk, generator)
    feed = iter(batches)
    first, median = timed(lambda: run(next(feed)), args.steps, device)
    return {"part": "compile", "name": "gradcache, layer drop 0" + (", compiled" if compiled else ""),
            "batch": args.batch, "chunk": step.chunk_size, "first_seconds": first, "seconds": median,
            "pairs_per_second": args.batch / median}


def time_encoding(args, device, generator, weights: torch.dtype) -> dict:
    model = bi_encoder("m2m100", SHAPES[args.shape], device).to(weights)
    encode = partial(model.encode_ids, fixed_ids(1024, SHAPES[args.shape]["vocab"], generator), 1024)
    eager = timed(encode, 3, device)[1]
    model.encoder.compile(dynamic=False)  # one shape: every batch is 1,024 x 128
    first, median = timed(encode, 3, device)
    name = "bf16" if weights == torch.bfloat16 else "float32"
    return {"part": "compile", "name": f"encode, {name} weights, compiled for one shape", "first_seconds": first,
            "seconds": median, "passages_per_second": 1024 / median, "eager_passages_per_second": 1024 / eager}


def compiled_runs(args, device, generator, record) -> None:
    """Eager against compiled: encoding with bf16 weights at its one shape; training without layer drop, same
    inputs (compile time is in the first step); encoding with float32 weights under autocast."""
    free_memory(device)
    record(time_encoding(args, device, generator, torch.bfloat16))
    batches = [random_batch(args.batch, SHAPES[args.shape]["vocab"], generator) for _ in range(args.steps + 1)]
    for compiled in (False, True):
        free_memory(device)
        record(time_training(args, device, generator, batches, compiled))
    free_memory(device)
    record(time_encoding(args, device, generator, torch.float32))


def host_syncs(args, device, generator, record) -> None:
    """Where a full-batch step in forward passes of 64 texts waits for the GPU (bench/gpu.py counts them)."""
    if device.type != "cuda":
        return
    model = bi_encoder("m2m100", SHAPES[args.shape], device).train()
    step = make_step(StepConfig(batch_size=512, chunk_size=64), model, LOSS)
    batch = random_batch(512, model.encoder.config.vocab_size, generator)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        step.backward(batch)
        torch.cuda.set_sync_debug_mode("error")
        try:
            step.backward(batch)
            where = None
        except RuntimeError:
            where = traceback.format_exc(limit=-8)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    record({"part": "syncs", "name": "full batch 512, groups of 64", "where": where})


def report(row: dict) -> str:
    if "families_ms" not in row:
        return json.dumps(row)
    total = sum(row["families_ms"].values())
    lines = [f"\n{row['name']}: {total:.1f} ms of device time", "| family | ms | share |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.1f} | {ms / total:.0%} |"
              for name, ms in sorted(row["families_ms"].items(), key=lambda item: -item[1])]
    lines += ["", "costliest: " + "; ".join(f"{name[:60]} {ms:.1f} ms" for name, ms in row["top_ms"][:5])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="m2m100-418m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--parts", default="kernels,syncs,compile")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--chunk", type=lambda value: value if value == "auto" else int(value), default=176)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also append every result as a JSON line here")
    args = parser.parse_args()
    device, generator = torch.device(args.device), torch.Generator().manual_seed(0)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {time.strftime('%Y-%m-%d')}, {card}, torch {torch.__version__}; "
          f"`python bench/gpu_profile.py {' '.join(sys.argv[1:])}`", flush=True)

    def record(row: dict) -> None:
        print(report(row), flush=True)
        if args.out:
            with args.out.open("a") as out:
                out.write(json.dumps({**row, "card": card, "shape": args.shape}) + "\n")

    parts = {"kernels": kernels, "syncs": host_syncs, "compile": compiled_runs}
    for name in args.parts.split(","):
        parts[name](args, device, generator, record)


if __name__ == "__main__":
    main()
