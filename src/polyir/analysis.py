"""From finished runs to evidence: dev curves and convergence speed, zero-shot scores over seeds, and paired
significance tests on per-query scores."""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import fmean, stdev

from scipy import stats

from polyir.evaluate.metrics import LOWER_IS_BETTER, best, better

AXES = ("step", "examples", "seconds")


def dev_curve(log: list[dict], metric_path: str) -> list[dict]:
    """[{step, examples, seconds, value}] at every evaluation; value = the metric averaged over dev tasks."""
    setting, metric = metric_path.split("/")
    curve = []
    for entry in log:
        values = [summary[setting][metric] for summary in entry.get("dev", {}).values()
                  if metric in summary.get(setting, {})]
        if values:
            curve.append({"step": entry["step"], "examples": entry["examples"], "seconds": entry["seconds"],
                          "value": fmean(values)})
    return curve


def convergence(curve: list[dict], target: float, metric: str) -> dict:
    """Steps, examples and seconds until the dev score first reaches `target` (None: never); the area under the
    dev curve over steps, divided by the steps covered (a mean score: higher is faster and better)."""
    reached = next((point for point in curve if not better(metric, target, point["value"])), None)
    out = {axis: (reached[axis] if reached else None) for axis in AXES}
    span = curve[-1]["step"] - curve[0]["step"] if len(curve) > 1 else 0
    area = sum((b["step"] - a["step"]) * (a["value"] + b["value"]) / 2 for a, b in zip(curve, curve[1:]))
    out["auc"] = area / span if span else (curve[0]["value"] if curve else None)
    out["best"] = best(metric, (p["value"] for p in curve)) if curve else None
    return out


def target_value(curves: list[list[dict]], share: float, metric: str) -> float:
    """share x the best dev score of the whole grid (for a lower-is-better metric: best / share)."""
    top = best(metric, [p["value"] for curve in curves for p in curve])
    return top / share if metric in LOWER_IS_BETTER else top * share


def mean_std(values: list[float]) -> tuple[float, float]:
    return fmean(values), (stdev(values) if len(values) > 1 else 0.0)


def per_query_units(results: list[dict], task: str, setting: str, metric: str) -> dict[tuple[str, str], float]:
    """{(language key, query id): metric} averaged over the seeds in `results` (one strategy's runs)."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        for key, queries in result["test"][task]["per_query"].get(setting, {}).items():
            for qid, values in queries.items():
                if metric in values:
                    sums[(key, qid)].append(values[metric])
    return {unit: fmean(v) for unit, v in sums.items()}


def paired_test(a: dict, b: dict) -> dict:
    """Paired t-test (scipy) of a against b over their shared units; mean difference a - b."""
    units = sorted(set(a) & set(b))
    x, y = [a[u] for u in units], [b[u] for u in units]
    diff = fmean(xi - yi for xi, yi in zip(x, y)) if units else math.nan
    if len(units) < 2 or all(xi == yi for xi, yi in zip(x, y)):
        return {"n": len(units), "difference": diff, "p": 1.0 if units else math.nan}
    return {"n": len(units), "difference": diff, "p": float(stats.ttest_rel(x, y).pvalue)}
