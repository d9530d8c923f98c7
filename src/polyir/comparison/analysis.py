"""From finished runs to evidence: dev curves and convergence speed, zero-shot scores over seeds, per-language
tables and paired significance tests on per-query scores. Numbers only; report.py puts them in words and plots."""

from __future__ import annotations

import math
import platform
import time
from collections import defaultdict
from pathlib import Path
from statistics import fmean, stdev

import numpy as np
from scipy import stats

from polyir.comparison.uncertainty import bootstrap_change, holm
from polyir.config import CompareConfig, CompareDataConfig
from polyir.languages import base_language
from polyir.results import (
    LOWER_IS_BETTER,
    BelowStart,
    CellResult,
    Change,
    Convergence,
    CurvePoint,
    InterpolationPoint,
    LogEntry,
    MeanStd,
    PairedTest,
    RunSummary,
    StrategySummary,
    Summary,
    Untrained,
    best,
    better,
    sum_drawn,
)

AXES = ("step", "examples", "seconds")
QUESTION = ("How does hybrid batch training (mixing monolingual X-X batches and cross-lingual X-Y batches) compare "
            "with gradient accumulation techniques (naive accumulation, and gradient caching) in convergence speed "
            "and zero-shot cross-lingual retrieval quality?")


def dev_curve(log: list[LogEntry], metric_path: str) -> list[CurvePoint]:
    """The dev score at every evaluation: the metric averaged over dev tasks."""
    setting, metric = metric_path.split("/")
    curve = []
    for entry in log:
        values = [summary[setting][metric] for summary in entry.dev.values() if metric in summary.get(setting, {})]
        if values:
            curve.append(CurvePoint(step=entry.step, examples=entry.examples, seconds=entry.seconds,
                                    value=fmean(values)))
    return curve


def convergence(curve: list[CurvePoint], target: float, metric: str) -> Convergence:
    """Steps, examples and seconds until the dev score first reaches `target` (None: never); the area under the
    dev curve over steps, divided by the steps covered (a mean score: higher is faster and better)."""
    reached = next((point for point in curve if not better(metric, target, point.value)), None)
    span = curve[-1].step - curve[0].step if len(curve) > 1 else 0
    area = sum((b.step - a.step) * (a.value + b.value) / 2 for a, b in zip(curve, curve[1:]))
    return Convergence(**{axis: getattr(reached, axis) if reached else None for axis in AXES},
                       auc=area / span if span else (curve[0].value if curve else None),
                       best=best(metric, (p.value for p in curve)) if curve else None)


def target_value(curves: list[list[CurvePoint]], share: float, metric: str) -> float:
    """share x the best dev score of the whole grid (for a lower-is-better metric: best / share)."""
    top = best(metric, [p.value for curve in curves for p in curve])
    return top / share if metric in LOWER_IS_BETTER else top * share


def mean_std(values: list[float]) -> MeanStd:
    return fmean(values), (stdev(values) if len(values) > 1 else 0.0)


def per_query_units(results: list[CellResult], task: str, setting: str, metric: str) -> dict[tuple[str, str], float]:
    """{(language key, query id): metric} averaged over the seeds in `results` (one strategy's runs)."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        for key, queries in result.test[task].per_query.get(setting, {}).items():
            for qid, values in queries.items():
                if metric in values:
                    sums[(key, qid)].append(values[metric])
    return {unit: fmean(v) for unit, v in sums.items()}


def paired_test(a: dict, b: dict) -> PairedTest:
    """Paired t-test (scipy) of a against b over their shared units; mean difference a - b."""
    units = sorted(set(a) & set(b))
    x, y = [a[u] for u in units], [b[u] for u in units]
    diff = fmean(xi - yi for xi, yi in zip(x, y)) if units else math.nan
    if len(units) < 2 or all(xi == yi for xi, yi in zip(x, y)):
        return PairedTest(n=len(units), difference=diff, p=1.0 if units else math.nan)
    return PairedTest(n=len(units), difference=diff, p=float(stats.ttest_rel(x, y).pvalue))


def summarise(config: CompareConfig, data: CompareDataConfig, results: list[CellResult], source: str,
              untrained: Untrained | None = None, lexical: Untrained | None = None,
              interpolated: dict[str, dict[str, Untrained]] | None = None) -> Summary:
    """Every number of the comparison; `source` says where the prepared data came from, `untrained` holds the
    starting model's scores that every strategy is read against, `lexical` BM25's, `interpolated` each cell's
    kept model merged with the starting one, by weight."""
    metric_path, share = config.eval.metric, config.target
    metric = metric_path.split("/")[1]
    curves = {r.cell: dev_curve(r.log, metric_path) for r in results}
    target = target_value(list(curves.values()), share, metric)
    by_strategy: dict[str, list[CellResult]] = defaultdict(list)
    runs: dict[str, list[RunSummary]] = defaultdict(list)
    for r in results:
        steps = [e for e in r.log if e.loss is not None]
        by_strategy[r.strategy].append(r)
        runs[r.strategy].append(RunSummary(
            cell=r.cell, strategy=r.strategy, seed=r.seed, curve=curves[r.cell],
            convergence=convergence(curves[r.cell], target, metric),
            pairs_per_second=sum(e.pairs_per_second for e in steps) / max(1, len(steps)),
            peak_memory_gib=max((e.peak_memory_gib for e in steps), default=None),
            negatives=_mean_dict([e.negatives for e in steps if e.negatives]),
            drawn=sum_drawn([e.drawn for e in r.log if e.drawn]),
            test={task: evaluation.table.summary for task, evaluation in r.test.items()}))
    strategies = {name: _aggregate(group) for name, group in runs.items()}
    reference = next((name for name in strategies if name.startswith("hybrid")), next(iter(strategies)))
    encoder = next((e.encoder for r in results for e in r.log if e.encoder), None)
    per_language = _per_language(by_strategy)
    start = _alone(untrained)
    trained = data.languages or _languages_of(data)
    return Summary(question=QUESTION, metric=metric_path, target_share=share, target=target, reference=reference,
                   training_languages=trained, data=source, encoder=encoder,
                   runs=[run for group in runs.values() for run in group],
                   strategies=strategies, significance=_significance(by_strategy, reference, config.test.metric),
                   per_language=per_language, machine=f"{platform.machine()}, {platform.system()}",
                   date=time.strftime("%Y-%m-%d"),
                   untrained={task: e.table.summary for task, e in untrained.test.items()} if untrained else {},
                   untrained_per_language=start, below_untrained=_below(per_language, start),
                   lexical={task: e.table.summary for task, e in lexical.test.items()} if lexical else {},
                   lexical_per_language=_alone(lexical),
                   interpolation=_interpolation(by_strategy, untrained, interpolated or {}, trained or [],
                                                config.test.metric),
                   changes=changes_against(by_strategy, untrained, trained or []))


def changes_against(by_strategy: dict[str, list[CellResult]], untrained: Untrained | None, trained: list[str]
                    ) -> list[Change]:
    """Every strategy's change in map against the untrained model, per test task and language (the settings the
    tables read by language), from per-query scores: a paired (over seeds, hierarchical) bootstrap interval, and
    p-values Holm-adjusted over every change the report states."""
    if untrained is None:
        return []
    known = {base_language(lang) for lang in trained}
    changes = []
    for name, group in by_strategy.items():
        for task, evaluation in untrained.test.items():
            settings = {setting: evaluation.per_query.get(setting, {}) for setting in
                        per_language_settings(evaluation.table.settings)}
            for setting, keys in settings.items():
                for key, start in keys.items():
                    runs = [r.test[task].per_query.get(setting, {}).get(key, {}) for r in group if task in r.test]
                    queries = sorted(q for q in start if "map" in start[q] and all(q in run for run in runs))
                    if not runs or not queries:
                        continue
                    differences = np.array([[run[q]["map"] - start[q]["map"] for q in queries] for run in runs])
                    mean, low, high, p = bootstrap_change(differences)
                    seen = bool(known) and trained_entry(key, known)
                    changes.append(Change(strategy=name, task=task, setting=setting, key=key, trained=seen,
                                          difference=mean, low=low, high=high, p=p))
    adjusted = holm([c.p for c in changes])
    return [c.model_copy(update={"p_holm": q}) for c, q in zip(changes, adjusted)]


def _interpolation(by_strategy: dict[str, list[CellResult]], untrained: Untrained | None,
                   interpolated: dict[str, dict[str, Untrained]], trained: list[str], metric: str
                   ) -> list[InterpolationPoint]:
    """Each strategy's curve from the untrained model (weight 0) through its interpolations to itself (weight 1),
    over seeds; empty unless interpolations were asked for."""
    if not any(interpolated.values()) or untrained is None:
        return []
    points = []
    for name, group in by_strategy.items():
        weights = sorted({float(w) for r in group for w in interpolated.get(r.cell, {})})
        curve = [(0.0, [untrained] * len(group)), *((w, [interpolated[r.cell][f"{w:g}"] for r in group])
                                                    for w in weights), (1.0, group)]
        for weight, members in curve:
            table = _per_language({name: members})
            seen, unseen = split_by_training(table, name, trained)
            test = {task: {setting: fmean(m.test[task].table.summary[setting][metric] for m in members)
                           for setting in members[0].test[task].table.summary
                           if metric in members[0].test[task].table.summary[setting]}
                    for task in members[0].test}
            points.append(InterpolationPoint(strategy=name, weight=weight, test=test, trained=seen, unseen=unseen))
    return points


def trained_entry(key: str, known: set[str]) -> bool:
    """Whether every language of a per-language entry (a language, or `x->y`) is among the `known` base
    languages of training (eng_Latn is the trained en)."""
    return all(base_language(lang) in known for lang in key.split("->"))


def split_by_training(per_language: dict, name: str, trained: list[str]) -> tuple[float | None, float | None]:
    """Mean map per language of `name` over the entries whose languages were all trained on, and over those with
    a language never trained on (by base language: eng_Latn is the trained en); None where there are none, or the
    training languages are unknown."""
    if not trained:
        return None, None
    known = {base_language(lang) for lang in trained}
    seen, unseen = [], []
    for settings in per_language.values():
        for setting in per_language_settings(settings):
            for key, by_strategy in settings[setting].items():
                (seen if trained_entry(key, known) else unseen).append(by_strategy[name])
    return (fmean(seen) if seen else None), (fmean(unseen) if unseen else None)


def _languages_of(data: CompareDataConfig) -> list[str] | None:
    """The languages of the training data, so that the report can name the test languages it never holds."""
    sources = data.sources()
    if not sources or not all(Path(source.path).is_file() for source in sources):
        return None
    from polyir.data.mixture import read_mixture

    return sorted({lang for example in read_mixture(sources).examples for lang in example.languages})


def _alone(result: Untrained | None) -> dict:
    """{task: {setting: {language or pair: map}}} of one result outside the grid (the untrained model, BM25)."""
    table = _per_language({"one": [result]}) if result else {}
    return {task: {setting: {key: v["one"] for key, v in keys.items()} for setting, keys in settings.items()}
            for task, settings in table.items()}


def per_language_settings(settings) -> list[str]:
    """The settings a task is read by language in: mono and multi, or cross where a task has neither (bitext
    against a pivot: one pair per language)."""
    return [x for x in ("mono", "multi") if x in settings] or [x for x in ("cross",) if x in settings]


def _below(per_language: dict, start: dict) -> list[BelowStart]:
    """Every (strategy, task, setting, language) whose map ends below the untrained model's."""
    found = []
    for task, settings in per_language.items():
        for setting in per_language_settings(settings):
            for key, by_strategy in settings[setting].items():
                origin = start.get(task, {}).get(setting, {}).get(key)
                found += [BelowStart(strategy=name, task=task, setting=setting, key=key, value=value, untrained=origin)
                          for name, value in by_strategy.items() if origin is not None and value < origin]
    return found


def _aggregate(group: list[RunSummary]) -> StrategySummary:
    to_target = {}
    for axis in AXES:
        reached = [getattr(r.convergence, axis) for r in group if getattr(r.convergence, axis) is not None]
        to_target[f"{axis}_to_target"] = sum(reached) / len(reached) if len(reached) == len(group) else None
    test: dict = {}
    for task, settings in group[0].test.items():
        for setting, metrics in settings.items():
            test.setdefault(task, {})[setting] = {name: mean_std([r.test[task][setting][name] for r in group])
                                                  for name in metrics}
    return StrategySummary(seeds=len(group), **to_target, auc=mean_std([r.convergence.auc for r in group]),
                           best_dev=mean_std([r.convergence.best for r in group]),
                           pairs_per_second=sum(r.pairs_per_second for r in group) / len(group),
                           peak_memory_gib=max((r.peak_memory_gib or 0.0) for r in group),
                           negatives=_mean_dict([r.negatives for r in group if r.negatives]), test=test)


def _mean_dict(rows: list[dict[str, float]]) -> dict[str, float]:
    """Key by key mean of dicts (the negatives audit over steps or runs); {} for none."""
    return {key: fmean(row[key] for row in rows) for key in rows[0]} if rows else {}


def _significance(by_strategy: dict[str, list[CellResult]], reference: str, metric: str) -> dict:
    """Each strategy against the reference, per test task and setting, on per-query scores."""
    out: dict = {}
    for task, evaluation in by_strategy[reference][0].test.items():
        for setting in evaluation.per_query:
            base = per_query_units(by_strategy[reference], task, setting, metric)
            for name, group in by_strategy.items():
                if name != reference:
                    test = paired_test(per_query_units(group, task, setting, metric), base)
                    out.setdefault(task, {}).setdefault(setting, {})[name] = test
    return out


def _per_language(by_strategy: dict[str, list[CellResult]]) -> dict:
    """{task: {setting: {language or pair: {strategy: map averaged over seeds}}}}."""
    out: dict = {}
    for name, group in by_strategy.items():
        for task, evaluation in group[0].test.items():
            for setting in evaluation.table.settings:
                for key in evaluation.table.setting(setting):
                    values = [r.test[task].table.setting(setting)[key]["map"] for r in group]
                    out.setdefault(task, {}).setdefault(setting, {}).setdefault(key, {})[name] = fmean(values)
    return out
