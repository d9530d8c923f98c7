"""BM25 (polyir.evaluation.lexical, bm25s) against dense exact search at 100k and 1M passages: time and peak memory.

Passages are three FLORES-200 / XQuAD-R sentences of one language drawn with a seed (real words in 17 languages,
so a real vocabulary); each of the 1,000 queries is a sentence of one passage, that passage relevant. BM25 is
timed building its index (tokenising, stemming, bm25s's weights) and evaluating (exact search: top 100 and the
exact rank of every relevant passage, all metrics); dense exact search evaluates random unit embeddings of 384
dimensions (multilingual-e5-small's width) for the same task, encoding left out. Each measurement runs in its own
process, so its peak memory (resident set, above the process's start) is its own.

    python bench/bm25_bench.py [--sizes 100000,1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from common import full_data, in_fresh_process, machine


def sentences() -> dict[str, list[str]]:
    from polyir.data.bitext import read_bitext
    from polyir.data.lareqa import read_lareqa

    root = full_data()
    _, flores = read_bitext(root / "flores-sib200")
    by_lang = {lang: list(lines) for lang, lines in flores.items()}
    for lang, articles in read_lareqa(root / "xquad-r").items():
        by_lang.setdefault(lang, []).extend(s for a in articles for s in a.sentences.values())
    return by_lang


def task(n_docs: int, n_queries: int, seed: int = 0):
    from polyir.data.records import Document, Query, RetrievalTask

    rng = random.Random(seed)
    pool = sentences()
    langs = sorted(pool)
    docs, queries, qrels = [], [], {}
    for i in range(n_docs):
        lang = langs[i % len(langs)]
        docs.append(Document(f"d{i}", " ".join(rng.choices(pool[lang], k=3)), lang))
    for i in rng.sample(range(n_docs), n_queries):
        queries.append(Query(f"q{i}", docs[i].text.split(". ")[0], docs[i].lang))
        qrels[f"q{i}"] = {f"d{i}": 1}
    return RetrievalTask("bench", docs, queries, qrels)


def _peak_gib(start_kib: int) -> float:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kib) / 2 ** 20


def measure(variant: str, n_docs: int, n_queries: int) -> dict:
    import torch

    from polyir.evaluation import evaluate_embeddings
    from polyir.evaluation.lexical import BM25

    retrieval = task(n_docs, n_queries)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    if variant == "bm25":
        queries, docs = BM25().represent(retrieval)
    else:
        generator = torch.Generator().manual_seed(0)
        docs = torch.nn.functional.normalize(torch.randn(n_docs, 384, generator=generator), dim=1)
        queries = torch.nn.functional.normalize(torch.randn(n_queries, 384, generator=generator), dim=1)
    built = time.perf_counter()
    result = evaluate_embeddings(retrieval, queries, docs, 100)
    done = time.perf_counter()
    return {"variant": variant, "docs": n_docs, "index_s": built - began, "search_s": done - built,
            "peak_gib": _peak_gib(start), "mono_ndcg10": result.table.summary["mono"]["ndcg@10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    print(f"{machine()}; {args.queries} queries")
    print("| passages | variant | index (s) | evaluate (s) | peak memory (GiB) | mono ndcg@10 |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in map(int, args.sizes.split(",")):
        for variant in ("bm25", "dense-exact"):
            row = in_fresh_process("bm25_bench", "measure", variant, size, args.queries)
            print(f"| {size:,} | {variant} | {row['index_s']:.1f} | {row['search_s']:.1f} | {row['peak_gib']:.2f} "
                  f"| {row['mono_ndcg10']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
