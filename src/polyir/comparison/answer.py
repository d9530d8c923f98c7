"""The comparison's answer in words a reader can quote; the numbers behind each sentence stay in the tables.

Which strategy converged first (steps, examples, seconds); which is best in each test setting and by how much;
which is best on the languages never trained on; whether the lead holds across seeds (Welch's t-test over the
seeds' scores, where there are at least two per strategy; with one seed the per-query p-values are said not to
cover training randomness); where no strategy is told apart from the reference; where one ends below the model
it started from."""

from __future__ import annotations

from statistics import fmean

from scipy import stats

from polyir.comparison.analysis import per_language_settings
from polyir.languages import base_language
from polyir.results import Summary, better

ALPHA = 0.05
AXES = (("steps", "step", "{:g}"), ("examples", "examples", "{:g}"), ("seconds", "seconds", "{:.0f} s"))


def answer(summary: Summary, metric: str) -> list[str]:
    lines = [_convergence(summary)]
    lines += [_best(summary, task, setting, metric) for task, settings in summary.significance.items()
              for setting in settings]
    optional = (_zero_shot(summary), _gain_against_loss(summary), _steps(summary, metric), _interpolation(summary),
                _against_bm25(summary, metric), _indistinguishable(summary, metric))
    lines += [line for line in optional if line]
    lines.append(_seeds(summary))
    if summary.untrained:
        lines.append(_forgetting(summary))
    return lines


def _convergence(summary: Summary) -> str:
    strategies = summary.strategies
    parts = []
    for label, axis, form in AXES:
        reached = {name: s.to_target(axis) for name, s in strategies.items() if s.to_target(axis) is not None}
        if reached:
            first = min(reached, key=reached.get)
            reference = reached.get(summary.reference)
            versus = (f", the reference {summary.reference} {form.format(reference)}"
                      if reference is not None and first != summary.reference else "")
            parts.append(f"in {label}, {first} ({form.format(reached[first])}{versus})")
    never = [name for name, s in strategies.items() if s.step_to_target is None]
    return (f"Convergence to {summary.target_share:.0%} of the best dev {summary.metric} ({summary.target:.4f}): "
            + ("; ".join(parts) if parts else "no strategy got there") + " first"
            + (f"; never reached by {', '.join(never)}" if never else "") + ".")


def _seed_scores(summary: Summary, strategy: str, task: str, setting: str, metric: str) -> list[float]:
    return [run.test[task][setting][metric] for run in summary.runs
            if run.strategy == strategy and metric in run.test.get(task, {}).get(setting, {})]


def _best(summary: Summary, task: str, setting: str, metric: str) -> str:
    """`task, setting metric: best S (v), ahead of the runner-up R by d; against the reference ...`."""
    means = {name: s.test[task][setting][metric][0] for name, s in summary.strategies.items()
             if metric in s.test.get(task, {}).get(setting, {})}
    ranked = sorted(means, key=lambda name: means[name], reverse=not better(metric, 0.0, 1.0))
    best = ranked[0]
    text = f"{task}, {setting} {metric}: best {best} ({means[best]:.4f})"
    if len(ranked) > 1:
        runner = ranked[1]
        text += f", ahead of {runner} by {abs(means[best] - means[runner]):.4f}"
        first, second = (_seed_scores(summary, name, task, setting, metric) for name in (best, runner))
        if len(first) > 1 and len(second) > 1:
            p = stats.ttest_ind(first, second, equal_var=False).pvalue
            holds = "holds" if p < ALPHA else "does not hold"
            text += f"; across seeds the lead {holds} (Welch p = {p:.3g}, {len(first)} and {len(second)} seeds)"
    tests = summary.significance[task][setting]
    if best != summary.reference and best in tests:
        t = tests[best]
        text += f"; against the reference {summary.reference}: {t.difference:+.4f} per query (p = {t.p:.3g})"
    elif best == summary.reference and tests:
        closest = min(tests, key=lambda name: abs(tests[name].difference))
        text += f"; it is the reference, and {closest} is the closest to it ({tests[closest].difference:+.4f} per " \
                f"query, p = {tests[closest].p:.3g})"
    return text + "."


def _languages(key: str) -> list[str]:
    return key.split("->")


def unseen_languages(summary: Summary) -> list[str]:
    """The test languages that no training example holds (by base language: eng_Latn is the trained en)."""
    trained = {base_language(lang) for lang in summary.training_languages or []}
    return sorted({lang for settings in summary.per_language.values() for setting in per_language_settings(settings)
                   for key in settings[setting] for lang in _languages(key) if trained
                   and base_language(lang) not in trained})


def _zero_shot(summary: Summary) -> str | None:
    """The best strategy on the test languages never trained on, by map per language averaged over them."""
    trained = {base_language(lang) for lang in summary.training_languages or []}
    if not trained:
        return None
    scores: dict[str, list[float]] = {}
    unseen: set[str] = set()
    for settings in summary.per_language.values():
        for setting in per_language_settings(settings):
            for key, by_strategy in settings[setting].items():
                new = [lang for lang in _languages(key) if base_language(lang) not in trained]  # eng_Latn is en
                if not new:
                    continue
                unseen.update(new)
                for name, value in by_strategy.items():
                    scores.setdefault(name, []).append(value)
    if not scores:
        return None
    means = {name: fmean(values) for name, values in scores.items()}
    ranked = sorted(means, key=means.get, reverse=True)
    count = len(next(iter(scores.values())))
    text = (f"On the languages never trained on ({', '.join(sorted(unseen))}; {count} per-language entries): best "
            f"{ranked[0]} (mean map {means[ranked[0]]:.4f})")
    if len(ranked) > 1:
        text += f", then {ranked[1]} ({means[ranked[1]]:.4f})"
    if len(ranked) > 2:
        text += f", last {ranked[-1]} ({means[ranked[-1]]:.4f})"
    return text + "."


def gain_and_loss(summary: Summary) -> dict[str, dict]:
    """Per strategy, from its changes against the untrained model (map per language): the mean change where it
    trained and where it never did, and the entries significantly below or above the untrained model (Holm-adjusted
    p < ALPHA)."""
    out: dict[str, dict] = {}
    for change in summary.changes:
        entry = out.setdefault(change.strategy, {"trained": [], "unseen": [], "below": [], "above": []})
        entry["trained" if change.trained else "unseen"].append(change.difference)
        if change.p_holm < ALPHA:
            entry["below" if change.difference < 0 else "above"].append(change)
    for entry in out.values():
        for side in ("trained", "unseen"):
            entry[side] = fmean(entry[side]) if entry[side] else None
    return out


def _gain_against_loss(summary: Summary) -> str | None:
    """The strategy with the most gain where it trained among those with no significant loss anywhere, and the
    ones that do lose."""
    table = gain_and_loss(summary)
    if not table:
        return None
    safe = {name: t for name, t in table.items() if not t["below"]}
    losing = {name: t for name, t in table.items() if t["below"]}
    seeds = ", and seeds" if min(s.seeds for s in summary.strategies.values()) > 1 else ""
    text = (f"Against the untrained model (map per language, 95% bootstrap intervals over queries{seeds}, "
            f"Holm-adjusted over {len(summary.changes)} comparisons): ")
    if safe:
        best = max(safe, key=lambda name: safe[name]["trained"] if safe[name]["trained"] is not None else -1.0)
        gain = safe[best]["trained"]
        text += (f"most gain with no language significantly below it: {best}"
                 + (f" ({gain:+.4f} where trained" if gain is not None else " (")
                 + (f", {safe[best]['unseen']:+.4f} on never-trained languages)" if safe[best]["unseen"] is not None
                    else ")"))
    else:
        text += "every strategy ends significantly below it on some language"
    if losing:
        text += "; significantly below it: " + "; ".join(f"{name} on {len(t['below'])} ({_entries(t['below'])})"
                                                          for name, t in losing.items())
    return text + "."


def _entries(changes: list, shown: int = 3) -> str:
    listed = ", ".join(f"{c.task} {c.setting} {c.key} {c.difference:+.4f}" for c in changes[:shown])
    return listed + (", …" if len(changes) > shown else "")


def negatives_per_query(negatives: dict[str, float]) -> float:
    """Every negative a query was scored against (masked translations are none)."""
    return sum(negatives.get(kind, 0.0) for kind in ("in_batch_same_language", "in_batch_other_language",
                                                     "cross_device", "banked", "hard"))


def _steps(summary: Summary, metric: str) -> str | None:
    """The step strategies ranked by test `metric` averaged over every sampler, test task and setting, each with
    the negatives per query it trained with; None when the grid compares one step strategy."""
    by_step: dict[str, list[str]] = {}
    for name in summary.strategies:  # sampling + step (+ retention): grouped by the step alone
        parts = name.split(" + ")
        by_step.setdefault(parts[1] if len(parts) > 1 else parts[0], []).append(name)
    if len(by_step) < 2:
        return None

    def score(name: str) -> float:
        return fmean(values[metric][0] for settings in summary.strategies[name].test.values()
                     for values in settings.values() if metric in values)

    means = {step: fmean(score(name) for name in names) for step, names in by_step.items()}
    ranked = sorted(means, key=means.get, reverse=not better(metric, 0.0, 1.0))
    negatives = {step: fmean(negatives_per_query(summary.strategies[n].negatives) for n in names)
                 for step, names in by_step.items() if all(summary.strategies[n].negatives for n in names)}
    parts = [f"{step} {means[step]:.4f}" + (f" ({negatives[step]:.0f} negatives per query)" if step in negatives
                                             else "") for step in ranked]
    return (f"Step strategies, {metric} averaged over samplers, test tasks and settings: " + ", ".join(parts)
            + f"; best {ranked[0]}, last {ranked[-1]}.")


def _interpolation(summary: Summary) -> str | None:
    """Where interpolating with the starting model lands, at each weight, on the languages never trained on and
    on the trained ones, against the strategy as trained and the untrained model."""
    points = [p for p in summary.interpolation if p.unseen is not None]
    if not points:
        return None
    start = next(p for p in points if p.weight == 0.0)
    parts = []
    for name in dict.fromkeys(p.strategy for p in points):
        curve = sorted((p for p in points if p.strategy == name and p.weight > 0.0), key=lambda p: p.weight)
        parts.append(f"{name}: " + ", ".join(
            ("as trained" if p.weight == 1.0 else f"w = {p.weight:g}") + f" {_pair(p.unseen, p.trained)}"
            for p in curve))
    return (f"Interpolation with the starting model (map per language, never trained on / trained; untrained "
            f"{_pair(start.unseen, start.trained)}): " + "; ".join(parts) + ".")


def _pair(unseen: float, trained: float | None) -> str:
    return f"{unseen:.4f}" + ("" if trained is None else f" / {trained:.4f}")


def _against_bm25(summary: Summary, metric: str) -> str | None:
    """Each test setting's best strategy against the lexical baseline, and the strategies that end below it."""
    parts = []
    for task, settings in summary.lexical.items():
        for setting, values in settings.items():
            if metric not in values:
                continue
            means = {name: s.test[task][setting][metric][0] for name, s in summary.strategies.items()
                     if metric in s.test.get(task, {}).get(setting, {})}
            if not means:
                continue
            best = max(means, key=means.get) if not better(metric, 0.0, 1.0) else min(means, key=means.get)
            below = [name for name, value in means.items() if better(metric, values[metric], value)]
            lead = means[best] - values[metric]
            under = "every strategy" if len(below) == len(means) else ", ".join(below)
            parts.append(f"{task} {setting}: BM25 {values[metric]:.4f}, best {best} {lead:+.4f}"
                         + (f", below BM25: {under}" if below else ""))
    return f"Against the BM25 baseline ({metric}): " + "; ".join(parts) + "." if parts else None


def _indistinguishable(summary: Summary, metric: str) -> str | None:
    """The settings where no strategy differs from the reference at p < ALPHA."""
    tied = [f"{task} {setting}" for task, settings in summary.significance.items()
            for setting, tests in settings.items() if tests and all(t.p >= ALPHA for t in tests.values())]
    if not tied:
        return None
    return (f"Indistinguishable from the reference {summary.reference} (every strategy p ≥ {ALPHA} per query, "
            f"{metric}): {', '.join(tied)}.")


def _seeds(summary: Summary) -> str:
    seeds = min(s.seeds for s in summary.strategies.values())
    if seeds < 2:
        return ("One seed per strategy: the p-values are over queries (paired tests) and do not cover training "
                "randomness; run more seeds (grid.seeds) before trusting a small difference.")
    return (f"{seeds} seeds per strategy: leads are tested across seeds (Welch); the per-query p-values compare "
            "each query's mean over the seeds.")


def _forgetting(summary: Summary) -> str:
    """Where strategies end below the model they started from (test map per language, as in the tables)."""
    if not summary.below_untrained:
        return "No strategy ends below the untrained model on any test language (map per language)."
    by_strategy: dict[str, list[str]] = {}
    for b in summary.below_untrained:
        by_strategy.setdefault(b.strategy, []).append(f"{b.task} {b.setting} {b.key} "
                                                      f"{b.value:.4f} < {b.untrained:.4f}")
    total = sum(len(settings[x]) for settings in summary.untrained_per_language.values()
                for x in per_language_settings(settings))
    return f"Below the untrained model (test map per language, of {total}; ↓ in the tables): " + "; ".join(
        f"{name}: {len(items)} ({', '.join(items[:3])}{', …' if len(items) > 3 else ''})"
        for name, items in by_strategy.items()) + "."
