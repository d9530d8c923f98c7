"""Step-strategy benchmark (not a test): time per step and peak memory of full, accumulation, gradcache and
contaccum (micro-batches of --chunk pairs, a bank of one batch) over batch sizes, on CPU, through polyir's
BiEncoder and step strategies, with an M2M-100 architecture large enough that activations dominate memory (random
weights: time and memory do not depend on their values).

  python bench/steps_bench.py [--batches 32,64,...] [--chunk 32]

Each (strategy, batch) runs in a fresh process so that its peak resident memory is its own; variants are
compared as ratios within this one run."""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import full_data, in_fresh_process, machine

ARCHITECTURE = {"d_model": 256, "encoder_layers": 4, "encoder_attention_heads": 4, "encoder_ffn_dim": 1024,
                "decoder_layers": 1, "decoder_attention_heads": 4, "decoder_ffn_dim": 256, "dropout": 0.1,
                "attention_dropout": 0.1, "encoder_layerdrop": 0.0}
PASSAGE = 128  # longest passage, in tokens


def build_model(folder: Path) -> Path:
    """A SentencePiece M2M-100 tokenizer trained on FLORES text, and an M2M-100 of ARCHITECTURE's size."""
    from transformers import M2M100Config, M2M100Model, M2M100Tokenizer

    from polyir.testing import build_tiny_m2m100

    tiny = build_tiny_m2m100(folder / "tiny")
    tokenizer = M2M100Tokenizer.from_pretrained(tiny)
    config = M2M100Config(vocab_size=M2M100Config.from_pretrained(tiny).vocab_size, max_position_embeddings=512,
                          **ARCHITECTURE)
    M2M100Model(config).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"


def measure(model_path: str, strategy: str, batch: int, chunk: int, repeats: int) -> dict:
    """Median seconds of one step (forward + backward, no optimiser; tokenised beforehand) and peak RSS growth,
    in this process."""
    import torch
    from common import LOSS

    from polyir.config import StepConfig
    from polyir.data.lareqa import read_lareqa, training_examples
    from polyir.models.biencoder import BiEncoder
    from polyir.training.batch import Batch
    from polyir.training.sampling import BatchSampler
    from polyir.training.steps import GradCache, make_step

    torch.manual_seed(0)
    model = BiEncoder.from_pretrained(model_path, max_query_length=32, max_passage_length=PASSAGE)
    model.train()
    by_lang = read_lareqa(full_data() / "xquad-r")
    sampler = BatchSampler(training_examples(by_lang, list(range(48))), batch, "xy", seed=0)
    if strategy == "gradcache-positions":  # what "auto" does on CUDA: passes bounded in positions, not texts
        step = GradCache(model, LOSS, None, chunk_tokens=chunk * PASSAGE)
    else:
        micro = chunk if strategy in ("accumulation", "contaccum") else None
        step = make_step(StepConfig(strategy=strategy, batch_size=batch, micro_batch_size=micro, chunk_size=chunk,
                                    bank_size=batch if strategy == "contaccum" else None), model, LOSS)
    batches = [Batch.of(model, sampler.next_batch()) for _ in range(repeats + 1)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for inputs in batches:
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        step.backward(inputs)
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"strategy": strategy, "batch": batch, "seconds": statistics.median(seconds[1:]),
            "peak_growth_gib": (peak - before) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="32,64,128,256,512,1024")
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-max", type=int, default=512, help="largest full batch (its memory grows linearly)")
    parser.add_argument("--strategies", default="full,accumulation,gradcache,contaccum,gradcache-positions")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model_path = build_model(Path(tmp))
        rows = []
        for batch in batches:
            for strategy in args.strategies.split(","):
                if strategy == "full" and batch > args.full_max:
                    continue
                rows.append(in_fresh_process("steps_bench", "measure", str(model_path), strategy, batch,
                                             args.chunk, args.repeats))
                print(rows[-1], file=sys.stderr)
    by = {(r["strategy"], r["batch"]): r for r in rows}
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; "
          f"`python bench/steps_bench.py --batches {args.batches} --chunk {args.chunk} --strategies "
          f"{args.strategies}`; M2M-100 encoder {ARCHITECTURE['d_model']}d x {ARCHITECTURE['encoder_layers']} "
          f"layers, query <= 32 / passage <= 128 tokens (XQuAD-R text), dropout on; micro-batch = {args.chunk} "
          f"pairs (contaccum: and a bank of one batch), {args.chunk} texts per forward pass, or {args.chunk} x "
          f"{PASSAGE} positions (gradcache in positions)\n")
    print("| batch | strategy | s/step | pairs/s | time / full | peak GiB (RSS growth) |")
    print("|---|---|---|---|---|---|")
    for batch in batches:
        full = by.get(("full", batch))
        for strategy in args.strategies.split(","):
            r = by.get((strategy, batch))
            if r is None:
                continue
            ratio = f"{r['seconds'] / full['seconds']:.2f}" if full else ""
            print(f"| {batch} | {strategy} | {r['seconds']:.2f} | {batch / r['seconds']:.1f} | {ratio} | "
                  f"{r['peak_growth_gib']:.2f} |")

if __name__ == "__main__":
    main()
