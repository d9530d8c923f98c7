"""Training and encoding throughput (not a test) through polyir's own BiEncoder and step strategies, at the shape
of M2M-100 418M's encoder, and, in the same run, sentence-transformers' CachedMultipleNegativesRankingLoss (the
peer) beside polyir's GradCache on an encoder both can load (XLM-R architecture, same width, depth and vocabulary).

  python bench/gpu.py [--shape m2m100-418m|small|tiny] [--device cuda|cpu] [--parts encode,train,peer,compile]
                      [--only REGEX] [--batch-scale 1] [--steps 6] [--warmup 2] [--out results.jsonl]
  python bench/gpu.py --report results.jsonl

Models are built from their configurations with random weights (nothing is downloaded; time and memory do not depend
on the weights). Inputs are token ids: queries of at most 32 and passages of at most 128 tokens, lengths uniform in
50-100% of the maximum. A step is forward, backward and the fused AdamW update, under bf16 autocast
over float32 weights on CUDA, or, in the rows marked "bf16 weights", on a bf16 copy of the weights whose gradients
are summed into float32 master weights (polyir's `precision: bf16-weights`); its time is the median over --steps
after --warmup; peak memory is the most PyTorch held during the configuration (weights, gradients, optimiser state
and activations). `syncs` counts the host synchronisations PyTorch reports inside one step's forward and backward
(CUDA only), `real tokens` the share of encoded positions that are not padding. Encoding (measured first) embeds
1,024 passages of exactly 128 tokens and of 64-128 tokens, with float32 weights under autocast and with bf16
weights (as `polyir evaluate --dtype bfloat16`); the part "compile" ends with the bf16 encoder compiled whole.
`model TFLOP/s` counts the encoder's matrix FLOPs on real tokens (2 per parameter per token forward, 6 forward and
backward; 109 GFLOP per pair at M2M-100 418M's shape): its ratio to the card's bf16 peak (about 790 TFLOP/s on an
H100) says how close a configuration runs to the hardware limit.

On the GPU machine (Python 3.12 with torch, transformers and sentence-transformers), polyir's other imports travel
as wheels: `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64
-d .whl pydantic pydantic_core annotated-types typing-inspection langcodes`, then there
`pip install --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:src python bench/gpu.py`
(bench/gpu.sh does this)."""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from common import (
    LOSS,
    PAD,
    PASSAGE,
    SHAPES,
    TEMPERATURE,
    backbone,
    bi_encoder,
    fixed_ids,
    free_memory,
    random_batch,
    random_ids,
    synchronize,
    tokenizer,
)

from polyir.config import StepConfig
from polyir.models.biencoder import BiEncoder
from polyir.training.batch import Batch
from polyir.training.passes import ForwardPasses
from polyir.training.steps import make_step

# (part, name, model, strategy, batch, chunk or micro-batch, memory_gib, precision): "bf16" is autocast over
# float32 weights, "bf16-weights" a bf16 copy over float32 master weights (polyir's `precision: bf16-weights`)
STEPS = [
    ("train", "full", "m2m100", "full", 512, 64, None, "bf16"),
    ("train", "full", "m2m100", "full", 512, 256, None, "bf16"),
    ("train", "full, bf16 weights", "m2m100", "full", 512, 128, None, "bf16-weights"),
    ("train", "full, bf16 weights", "m2m100", "full", 512, 256, None, "bf16-weights"),
    ("train", "full, bf16 weights", "m2m100", "full", 512, 512, None, "bf16-weights"),
    ("train", "accumulation", "m2m100", "accumulation", 512, 64, None, "bf16"),
    ("train", "contaccum, bank 512", "m2m100", "contaccum", 512, 64, None, "bf16"),
    ("train", "gradcache", "m2m100", "gradcache", 512, 64, None, "bf16"),
    ("train", "gradcache", "m2m100", "gradcache", 512, "auto", None, "bf16"),
    ("train", "gradcache", "m2m100", "gradcache", 4096, 128, None, "bf16"),
    ("train", "gradcache", "m2m100", "gradcache", 4096, "auto", 16.0, "bf16"),
    ("train", "gradcache, bf16 weights", "m2m100", "gradcache", 4096, "auto", 16.0, "bf16-weights"),
    ("peer", "polyir gradcache", "xlmr", "gradcache", 512, 64, None, "bf16"),
    ("peer", "polyir gradcache, bf16 weights", "xlmr", "gradcache", 512, 64, None, "bf16-weights"),
    ("peer", "peer CachedMNRL", "xlmr", "peer", 512, 64, None, "bf16"),
    ("peer", "polyir gradcache", "xlmr", "gradcache", 512, "auto", 16.0, "bf16"),
    ("peer", "polyir gradcache, bf16 weights", "xlmr", "gradcache", 512, "auto", 16.0, "bf16-weights"),
    ("peer", "polyir gradcache", "xlmr", "gradcache", 4096, 128, None, "bf16"),
    ("peer", "polyir gradcache, bf16 weights", "xlmr", "gradcache", 4096, 128, None, "bf16-weights"),
    ("peer", "peer CachedMNRL", "xlmr", "peer", 4096, 128, None, "bf16"),
    ("peer", "polyir gradcache", "xlmr", "gradcache", 4096, "auto", 16.0, "bf16"),
    ("peer", "polyir gradcache, bf16 weights", "xlmr", "gradcache", 4096, "auto", 16.0, "bf16-weights"),
    ("compile", "full, compiled", "m2m100", "full", 512, 64, None, "bf16"),
    ("compile", "gradcache, compiled", "m2m100", "gradcache", 4096, "auto", 16.0, "bf16"),
    ("compile", "full, bf16 weights, compiled", "m2m100", "full", 512, 256, None, "bf16-weights"),
    ("compile", "gradcache, bf16 weights, compiled", "m2m100", "gradcache", 4096, "auto", 16.0, "bf16-weights"),
]


def real_token_share(model, batch: Batch, strategy: str, chunk: int | None, positions: int | None = None) -> float:
    """Real tokens / encoded positions: polyir's own forward passes (passes.ForwardPasses: texts of similar length,
    queries apart, padded to a multiple of 8 on CUDA, at most `chunk` texts and `positions` positions each;
    accumulation: within each micro-batch of `chunk` pairs); the peer pads each column of the batch to its longest
    text."""
    real = sum(map(len, batch.texts))
    if strategy == "peer":
        return real / sum(len(rows) * max(map(len, rows)) for rows in (batch.queries, batch.passages))
    parts = batch.split(chunk) if strategy in ("accumulation", "contaccum") else [batch]
    return real / sum(inputs["input_ids"].numel() for part in parts
                      for inputs in ForwardPasses(model, part, chunk, positions).inputs)


def peer_model(shape: dict, device: torch.device, folder: Path):
    """sentence-transformers' own model, loaded from a folder as its users load one."""
    from sentence_transformers import SentenceTransformer, models

    backbone("xlmr", shape).save_pretrained(folder)
    tokenizer().save_pretrained(folder)
    transformer = models.Transformer(str(folder), max_seq_length=PASSAGE)
    pooling = models.Pooling(shape["d"], pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling], device=str(device))


def peer_loss(model, chunk: int):
    try:
        from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import CachedMultipleNegativesRankingLoss
    return CachedMultipleNegativesRankingLoss(model, scale=1 / TEMPERATURE, mini_batch_size=chunk)


def features(rows: list[list[int]], device: torch.device) -> dict[str, torch.Tensor]:
    """What sentence-transformers' collator gives its loss: each column padded to its longest text."""
    longest = max(map(len, rows))
    ids = torch.full((len(rows), longest), PAD)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    return {"input_ids": ids.to(device), "attention_mask": (ids != PAD).long().to(device)}


def count_syncs(run) -> int:
    """Host synchronisations PyTorch reports while `run` executes (its CUDA sync debug mode)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def measure_steps(spec, model, args, device, generator) -> dict:
    part, name, kind, strategy, batch_size, chunk, memory_gib, precision = spec
    batch_size = max(8, int(batch_size * args.batch_scale))
    chunk = chunk if chunk == "auto" else max(2, int(chunk * args.batch_scale))
    if strategy == "contaccum":  # its micro-batches divide the batch
        batch_size -= batch_size % chunk
    cuda = device.type == "cuda"
    vocab = SHAPES[args.shape]["vocab"]
    batches = [random_batch(batch_size, vocab, generator) for _ in range(args.warmup + args.steps)]
    parameters = [p for p in (model.encoder if isinstance(model, BiEncoder) else model).parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=1e-5, fused=cuda)
    if isinstance(model, BiEncoder) and model.compute is not None:  # as polyir's Trainer does
        optimizer.register_step_post_hook(lambda *_: model.compute.refresh())
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda and precision == "bf16")
    if strategy == "peer":
        peer = peer_loss(model, chunk)

        def step(batch):
            with autocast:
                peer([features(batch.queries, device), features(batch.passages, device)], None).backward()
    else:
        micro = chunk if strategy in ("accumulation", "contaccum") else None
        config = StepConfig(strategy=strategy, batch_size=batch_size, micro_batch_size=micro, chunk_size=chunk,
                            memory_gib=memory_gib, bank_size=batch_size if strategy == "contaccum" else None)
        polyir_step = make_step(config, model, LOSS)

        def step(batch):
            with autocast:
                polyir_step.backward(batch)
    model.train()
    free_memory(device)
    seconds = []
    for batch in batches:
        synchronize(device)
        start = time.perf_counter()
        step(batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    syncs = count_syncs(lambda: step(batches[-1])) if cuda and strategy != "peer" else None
    optimizer.zero_grad(set_to_none=True)
    del optimizer
    median = statistics.median(seconds[args.warmup:])
    tokens = sum(len(t) for b in batches for t in b.texts) / len(batches) / batch_size
    # what "auto" became: texts on CPU, None (positions bound them) on CUDA
    used = chunk if strategy in ("peer", "accumulation", "contaccum") else polyir_step.chunk_size
    positions = polyir_step.chunk_tokens if strategy == "gradcache" else None
    label = used if chunk != "auto" else f"auto={used}" if positions is None else f"auto={positions:,} positions"
    share = real_token_share(model, batches[0], strategy, used, positions)
    return {"part": part, "name": name, "model": kind, "strategy": strategy, "precision": precision,
            "batch": batch_size, "chunk": label,
            "memory_gib": memory_gib, "seconds": median, "pairs_per_second": batch_size / median,
            "tokens_per_pair": tokens, "peak_gib": peak, "syncs": syncs, "real_tokens": share}


def measure_encoding(model: BiEncoder, args, device, generator, batch_size: int, fixed: bool, name: str) -> dict:
    """1,024 passages of exactly 128 tokens, or of 64-128 tokens like the training passages
    (where encoding in order of length pays)."""
    vocab = SHAPES[args.shape]["vocab"]
    count = max(64, int(1024 * args.batch_scale))
    if fixed:
        ids = fixed_ids(count, vocab, generator)
    else:
        ids = random_ids(count, PASSAGE, vocab, generator)
    seconds = []
    for _ in range(args.warmup + 3):
        synchronize(device)
        start = time.perf_counter()
        model.encode_ids(ids, batch_size)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds[args.warmup:])
    lengths = f"{PASSAGE}" if fixed else f"{PASSAGE // 2}-{PASSAGE}"
    return {"part": "encode", "name": name, "model": "m2m100",
            "batch": batch_size, "passages": count, "passage_tokens": lengths,
            "tokens_per_passage": sum(map(len, ids)) / count, "seconds": median,
            "passages_per_second": count / median}


def matrix_parameters(shape: dict) -> int:
    """The encoder's parameters that multiply every token (attention projections and feed-forward layers): a
    token costs 2 FLOPs per such parameter forward and 6 forward and backward (attention scores left out)."""
    return shape["layers"] * (4 * shape["d"] ** 2 + 2 * shape["d"] * shape["ffn"])


def budget(row: dict) -> str:
    return f", {row['memory_gib']:g} GiB budget" if row["memory_gib"] else ""


def table(rows: list[dict], shape: dict) -> str:
    lines = ["| part | configuration | model | batch | chunk | pairs/s | model TFLOP/s | peak GiB | syncs | "
             "real tokens |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["part"] == "encode":
            continue
        tflops = r["pairs_per_second"] * r["tokens_per_pair"] * 6 * matrix_parameters(shape) / 1e12
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        syncs = r["syncs"] if r["syncs"] is not None else "-"
        lines.append(f"| {r['part']} | {r['name']}{budget(r)} | {r['model']} | {r['batch']} | {r['chunk']} | "
                     f"{r['pairs_per_second']:,.0f} | {tflops:.3g} | {peak} | {syncs} | {r['real_tokens']:.0%} |")
    encodes = [r for r in rows if r["part"] == "encode"]
    if encodes:
        lines += ["", "| encoding | passage tokens | batch | passages/s | model TFLOP/s |", "|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['passage_tokens']} | {r['batch']} | {r['passages_per_second']:,.0f} | "
                  f"{r['passages_per_second'] * r['tokens_per_passage'] * 2 * matrix_parameters(shape) / 1e12:.3g} |"
                  for r in encodes]
    peers = [r for r in rows if r["part"] == "peer" and r["strategy"] == "peer"]
    for peer in peers:  # the ratio at equal batch; equal chunk isolates the rest
        for r in rows:
            if r["part"] == "peer" and r["strategy"] == "gradcache" and r["batch"] == peer["batch"]:
                lines.append(f"\n{r['name']} (chunk {r['chunk']}{budget(r)}) / peer (chunk {peer['chunk']}) at "
                             f"batch {peer['batch']}: {r['pairs_per_second'] / peer['pairs_per_second']:.2f}x")
    return "\n".join(lines)


# (batch size, passages of exactly 128 tokens): 128 tokens in one batch or in four; 64-128 tokens in one batch, and
# in batches of 256 and 128 in order of length, which spares most of the padding (as `polyir evaluate` encodes)
ENCODINGS = [(256, True), (1024, True), (1024, False), (256, False), (128, False)]
COMPILED_ENCODINGS = [(1024, True), (1024, False)]  # each shape compiles: two only


def encodings(model: BiEncoder, args, device, generator, name: str = "encode", batches=ENCODINGS) -> list[dict]:
    return [measure_encoding(model, args, device, generator, size, fixed, name) for size, fixed in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="m2m100-418m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--parts", default="encode,train,peer,compile")
    parser.add_argument("--batch-scale", type=float, default=1.0, help="multiply batch and chunk sizes")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", default="", help="run only the training rows whose part, name, model, batch "
                                                   "and chunk match this regular expression")
    parser.add_argument("--out", type=Path, help="also append every result as a JSON line here")
    parser.add_argument("--report", type=Path, help="only print the tables of the results in this JSON-lines file "
                                                    "(of a run cut short, say)")
    args = parser.parse_args()
    if args.report:
        lines = args.report.read_text().splitlines() if args.report.is_file() else []
        rows = [json.loads(line) for line in lines if line.strip()]
        if not rows:
            sys.exit(f"bench/gpu.py: no results in {args.report}")
        print(f"# {rows[0]['date']}, {rows[0]['card']}, shape {rows[0]['shape']}; results of {args.report}")
        print("\n" + table(rows, SHAPES[rows[0]["shape"]]))
        return
    device, shape, parts = torch.device(args.device), SHAPES[args.shape], args.parts.split(",")
    generator = torch.Generator().manual_seed(0)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU"
    date = time.strftime("%Y-%m-%d")
    print(f"# {date}, {card}, torch {torch.__version__}; "
          f"`python bench/gpu.py {' '.join(sys.argv[1:])}`", flush=True)
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as out:
                out.write(json.dumps({**row, "card": card, "shape": args.shape, "date": date}) + "\n")

    models: dict[tuple[str, str], BiEncoder] = {}

    def bi_encoder_of(kind: str, precision: str = "bf16") -> BiEncoder:
        if (kind, precision) not in models:
            models.clear()
            free_memory(device)
            models[kind, precision] = bi_encoder(kind, shape, device)
            if precision == "bf16-weights":
                models[kind, precision].compute_in(torch.bfloat16)
        return models[kind, precision]

    def half_encoder() -> BiEncoder:
        """bf16 weights, as `polyir evaluate --dtype bfloat16`."""
        return bi_encoder("m2m100", shape, device).to(torch.bfloat16)

    if "encode" in parts:  # first: it is quick, and a run cut short still has it
        for row in encodings(bi_encoder_of("m2m100"), args, device, generator):
            record(row)
        for row in encodings(half_encoder(), args, device, generator, "encode, bf16 weights"):
            record(row)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in STEPS:
            part, name, kind, strategy, batch_size, chunk = spec[:6]
            if part not in parts or not re.search(args.only, f"{part} {name} {kind} {batch_size} {chunk}"):
                continue
            if strategy == "peer":
                models.clear()
                free_memory(device)
                model = peer_model(shape, device, Path(tmp) / "peer")
            else:
                model = bi_encoder_of(kind, spec[-1])
                if part == "compile" and not getattr(model, "compiled", False):
                    model.compile_encoder()
                    model.compiled = True
            record(measure_steps(spec, model, args, device, generator))
            del model
    if "compile" in parts and "encode" in parts:  # last: compiling takes a minute or more
        compiled = half_encoder().compile_encoder()
        for row in encodings(compiled, args, device, generator, "encode, bf16 weights, compiled", COMPILED_ENCODINGS):
            record(row)
    print("\n" + table(rows, shape))


if __name__ == "__main__":
    main()
