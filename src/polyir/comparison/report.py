"""The comparison's report, rendered from analysis.summarise's numbers: results.json (every number), report.md
(question, answer, setup, tables) and PNG plots (dev curves against steps, examples and seconds; per-language bars;
language bias)."""

from __future__ import annotations

from pathlib import Path

from polyir.comparison.analysis import per_language_settings
from polyir.comparison.answer import ALPHA, answer, gain_and_loss, negatives_per_query, unseen_languages
from polyir.config import CompareConfig
from polyir.files import replace_together
from polyir.results import Summary, sum_drawn


def write(out: Path, config: CompareConfig, summary: Summary, command: str) -> Summary:
    """results.json, report.md and plots/, replaced together; returns the summary with its answer in words."""
    summary = summary.model_copy(update={"answer": answer(summary, config.test.metric)})
    with replace_together(out) as staging:  # one state: a kill never leaves one run's report beside another's numbers
        plots = _plots(staging / "plots", summary)
        (staging / "results.json").write_text(summary.model_dump_json(indent=1), encoding="utf-8")
        (staging / "report.md").write_text(_markdown(config, summary, plots, command), encoding="utf-8")
    return summary


def _plots(folder: Path, summary: Summary) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = list(summary.strategies)
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    files = []
    for axis, label in (("step", "optimiser steps"), ("examples", "examples seen"), ("seconds", "wall-clock seconds")):
        figure, ax = plt.subplots(figsize=(9, 5.5))
        first_seed = min(r.seed for r in summary.runs)
        for run in summary.runs:
            ax.plot([getattr(p, axis) for p in run.curve], [p.value for p in run.curve], marker="o", markersize=3,
                    color=colours[run.strategy], alpha=0.9, linestyle=["-", "--", ":", "-."][run.seed % 4],
                    label=run.strategy if run.seed == first_seed else None)
        ax.axhline(summary.target, color="grey", linewidth=0.8, linestyle="--",
                   label=f"target ({summary.target_share:.0%} of best)")
        ax.set_xlabel(label)
        ax.set_ylabel(f"dev {summary.metric}")
        ax.set_title(f"Dev {summary.metric} against {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figure.tight_layout()
        files.append(f"dev_vs_{axis}.png")
        figure.savefig(folder / files[-1], dpi=110)
        plt.close(figure)
    task = next(iter(summary.per_language), None)
    if task:
        setting = "mono" if "mono" in summary.per_language[task] else next(iter(summary.per_language[task]))
        table = summary.per_language[task][setting]
        keys = sorted(table)
        figure, ax = plt.subplots(figsize=(max(8, len(keys) * 0.9) + 4, 5))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.bar([k + i * width for k in range(len(keys))], [table[key].get(name, 0.0) for key in keys], width,
                   color=colours[name], label=name)
        trained = set(summary.training_languages or [])
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))],
                      [key + ("" if not trained or key in trained else "†") for key in keys])
        ax.set_ylabel(f"{setting} map")
        ax.set_title(f"{task}: {setting} map per language († never in training)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        files.append("per_language.png")
        figure.savefig(folder / files[-1], dpi=110)
        plt.close(figure)
        distances = [(name, summary.strategies[name].test[task].get("multi", {}).get("rank_distance"))
                     for name in names]
        distances = [(n, d) for n, d in distances if d]
        if distances:
            figure, ax = plt.subplots(figsize=(8, 4.5))
            ax.barh([n for n, _ in distances], [d[0] for _, d in distances], xerr=[d[1] for _, d in distances],
                    color=[colours[n] for n, _ in distances])
            ax.set_xlabel("rank distance (lower = less language bias)")
            ax.set_title(f"{task}: language bias in the multi setting")
            figure.tight_layout()
            files.append("rank_distance.png")
            figure.savefig(folder / files[-1], dpi=110)
            plt.close(figure)
    if summary.changes:
        files.append(_frontier(folder, summary, colours, plt))
    return files


def _drawn_by_strategy(summary: Summary) -> dict[str, dict]:
    """Each strategy's pairs drawn, summed over its runs (seeds)."""
    runs: dict[str, list[dict]] = {}
    for run in summary.runs:
        if run.drawn and run.drawn["xx"] + run.drawn["xy"]:
            runs.setdefault(run.strategy, []).append(run.drawn)
    return {name: sum_drawn(parts) for name, parts in runs.items()}


def _frontier(folder: Path, summary: Summary, colours: dict, plt) -> str:
    """Gain where a strategy trained (x) against its change on languages it never trained on (y), against the
    untrained model: a point per strategy, a line per interpolation curve (from the untrained model at 0, 0)."""
    figure, ax = plt.subplots(figsize=(8, 6))
    for name, t in gain_and_loss(summary).items():
        if t["trained"] is not None and t["unseen"] is not None:
            ax.scatter([t["trained"]], [t["unseen"]], color=colours[name], s=60, label=name,
                       marker="x" if t["below"] else "o")
    start = {p.strategy: p for p in summary.interpolation if p.weight == 0.0}
    for name in start:
        curve = [p for p in summary.interpolation if p.strategy == name and p.trained is not None
                 and p.unseen is not None]
        ax.plot([p.trained - start[name].trained for p in curve], [p.unseen - start[name].unseen for p in curve],
                color=colours[name], linewidth=1, alpha=0.7, marker=".")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("mean change in map, trained languages")
    ax.set_ylabel("mean change in map, languages never trained on")
    ax.set_title("Gain against loss (x: some language significantly below the untrained model; lines: "
                 "interpolation)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(folder / "frontier.png", dpi=110)
    plt.close(figure)
    return "frontier.png"


def _fmt(value, digits: int = 4, spread: bool = True) -> str:
    """A number, or `mean ± std` (the mean alone when there was one seed), or 'never' for None."""
    if value is None:
        return "never"
    if isinstance(value, (list, tuple)):
        return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}" if spread else f"{value[0]:.{digits}f}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _encoder(summary: Summary) -> str:
    """The encoder settings the runs used, each with where it came from (user, model or polyir's default)."""
    if not summary.encoder:
        return "encoder settings not recorded"
    shown = ("pooling", "normalize", "query_prefix", "passage_prefix", "max_query_length", "max_passage_length")
    return ", ".join(f"{key} {summary.encoder[key]['value']!r} ({summary.encoder[key]['from']})"
                     for key in shown if key in summary.encoder)


def _markdown(config: CompareConfig, summary: Summary, plots: list[str], command: str) -> str:
    s, metric = summary, config.test.metric
    spread = len(config.grid.seeds) > 1
    cadence = (f"every {config.eval.every_examples} examples" if config.eval.every_examples
               else f"every {config.eval.every_steps} steps")
    lines = [f"# polyir comparison: {config.output_dir}", "", "## The question", "", s.question, "",
             "## The answer", ""]
    lines += [f"- {line}" for line in s.answer]
    budget = {k: v for k, v in config.budget.model_dump().items() if v is not None}
    trained = ", ".join(s.training_languages or []) or "all languages of the training data"
    unseen = unseen_languages(s)
    lines += ["", "## Setup", "",
              f"- Model: `{config.model.name_or_path}` ({_encoder(s)})",
              f"- Data: {s.data}",
              f"- Training languages: {trained}; every other language is zero-shot (marked †)"
              + (f": never seen in training by any cell: {', '.join(unseen)}." if unseen else "."),
              f"- Grid: {len(s.strategies)} strategies × seeds {config.grid.seeds}; budget {budget} per run; "
              f"lr {config.optim.lr:g}, temperature {config.optim.temperature:g}, warm-up {config.optim.warmup_steps}",
              f"- Dev metric `{s.metric}` {cadence}; target = "
              f"{s.target_share:.0%} of the grid's best dev score = {s.target:.4f}. "
              f"Reference strategy: **{s.reference}**.",
              f"- Significance: paired t-test (scipy) on per-query {metric}, averaged over seeds, against the "
              "reference; differences are strategy minus reference.",
              f"- Machine: {s.machine}; date {s.date}; command `{command}`", "",
              "## Convergence speed", "",
              "| strategy | steps to target | examples to target | seconds to target | dev AUC (mean score) | "
              "best dev | pairs/s | peak GiB |", "|---|---|---|---|---|---|---|---|"]
    for name, a in s.strategies.items():
        lines.append(f"| {name} | {_fmt(a.step_to_target)} | {_fmt(a.examples_to_target)} | "
                     f"{_fmt(a.seconds_to_target, 3)} | {_fmt(a.auc, spread=spread)} | "
                     f"{_fmt(a.best_dev, spread=spread)} | {a.pairs_per_second:.1f} | {a.peak_memory_gib:.2f} |")
    if any(a.negatives for a in s.strategies.values()):
        lines += ["", "## Negatives per query (mean over steps: the mechanism behind the step strategies)", "",
                  "| strategy | in-batch, same language | in-batch, other language | other devices | banked "
                  "(age in steps) | hard (data) | total | masked as translations |", "|---" * 8 + "|"]
        for name, a in s.strategies.items():
            n = a.negatives
            if n:
                lines.append(f"| {name} | {n['in_batch_same_language']:.1f} | {n['in_batch_other_language']:.1f} | "
                             f"{n['cross_device']:.1f} | {n['banked']:.1f} ({n['banked_age']:.2f}) | "
                             f"{n['hard']:.1f} | {negatives_per_query(n):.1f} | {n['masked_translations']:.2f} |")
    drawn = _drawn_by_strategy(s)
    if drawn:
        lines += ["", "## What the samplers drew (pairs over each run, summed over seeds)", "",
                  "| strategy | pairs | X-X | X-Y | most drawn (query language, or query->passage) |",
                  "|---|---|---|---|---|"]
        for name, d in drawn.items():
            pairs = d["xx"] + d["xy"]
            top = sorted(d["languages"].items(), key=lambda item: -item[1])[:6]
            sources = "; sources: " + ", ".join(f"{key} {count / pairs:.0%}" for key, count in d["sources"].items()) \
                if d.get("sources") else ""
            lines.append(f"| {name} | {pairs} | {d['xx'] / pairs:.0%} | {d['xy'] / pairs:.0%} | "
                         + ", ".join(f"{key} {count / pairs:.0%}" for key, count in top) + sources + " |")
    lines += ["", "## Zero-shot quality (test tasks" + (", mean ± std over seeds)" if spread else ", one seed)"), ""]
    first = next(iter(s.strategies.values()))
    for task in first.test:
        settings = list(first.test[task])
        lines += [f"### {task}", "", "| strategy | " + " | ".join(f"{x} {metric}" for x in settings) +
                  " | " + " | ".join(f"p ({x})" for x in settings) + " |", "|---" * (1 + 2 * len(settings)) + "|"]
        for label, scores in (("untrained (step 0)", s.untrained), ("BM25 (lexical baseline)", s.lexical)):
            if task in scores:
                values = [scores[task].get(x, {}).get(metric) for x in settings]
                lines.append(f"| {label} | " + " | ".join("" if v is None else f"{v:.4f}" for v in values) +
                             " | " + " | ".join("" for _ in settings) + " |")
        for name, a in s.strategies.items():
            values = [_fmt(a.test[task][x].get(metric), spread=spread) for x in settings]
            tests = s.significance.get(task, {})
            ps = ["ref." if name == s.reference else f"{tests[x][name].p:.3g}" if name in tests.get(x, {})
                  else "" for x in settings]
            lines.append(f"| {name} | " + " | ".join(values) + " | " + " | ".join(ps) + " |")
        lines.append("")
    for task, settings in s.per_language.items():
        for setting in per_language_settings(settings):
            table, names = settings[setting], list(s.strategies)
            start = s.untrained_per_language.get(task, {}).get(setting, {})
            trained = set(s.training_languages or [])
            bm25 = s.lexical_per_language.get(task, {}).get(setting, {})
            head = ["untrained"] * bool(start) + ["BM25"] * bool(bm25) + names
            lines += [f"### {task}: {setting} map per language (mean over seeds; † = never in training; ↓ = below "
                      "the untrained model)", "", "| language | " + " | ".join(head) + " |",
                      "|---" * (1 + len(head)) + "|"]
            for key in sorted(table):
                languages = key.split("->")
                mark = "" if not trained or all(k in trained for k in languages) else " †"
                cells = [f"{start[key]:.4f}"] if key in start else [""] * bool(start)
                cells += [f"{bm25[key]:.4f}"] if key in bm25 else [""] * bool(bm25)
                for name in names:
                    value = table[key].get(name, float("nan"))
                    cells.append(f"{value:.4f}" + (" ↓" if key in start and value < start[key] else ""))
                lines.append(f"| {key}{mark} | " + " | ".join(cells) + " |")
            lines.append("")
    table = gain_and_loss(s)
    if table:
        lines += ["## Gain and loss against the untrained model", "",
                  "Change in map per language, strategy minus untrained, mean over queries (and seeds), with its "
                  "95% paired-bootstrap interval; significantly below or above: bootstrap p < "
                  f"{ALPHA} after Holm's correction over the report's {len(s.changes)} comparisons. Every change "
                  "is in results.json (`changes`); the frontier plot draws the first two columns.", "",
                  "| strategy | mean change, trained languages | mean change, never trained † | significantly below | "
                  "significantly above |", "|---|---|---|---|---|"]
        for name, t in table.items():
            below = ", ".join(f"{c.task} {c.key} {c.difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}]"
                              for c in t["below"]) or "none"
            values = ["—" if t[side] is None else f"{t[side]:+.4f}" for side in ("trained", "unseen")]
            lines.append(f"| {name} | {values[0]} | {values[1]} | {below} | {len(t['above'])} |")
        lines.append("")
    if s.interpolation:
        columns = [(task, setting) for task, settings in s.interpolation[0].test.items() for setting in settings]
        lines += ["## Interpolation with the starting model (WiSE-FT: (1 − w)·untrained + w·trained, no training)",
                  "", "| strategy | w | " + " | ".join(f"{task} {setting} {metric}" for task, setting in columns)
                  + " | map, trained languages | map, never trained (†) |", "|---" * (4 + len(columns)) + "|"]
        for point in s.interpolation:
            values = [point.test.get(task, {}).get(setting) for task, setting in columns]
            lines.append(f"| {point.strategy} | {point.weight:g} | " + " | ".join(
                "—" if v is None else f"{v:.4f}" for v in [*values, point.trained, point.unseen]) + " |")
        lines.append("")
    lines += ["## Language bias (rank distance in the multi setting; lower is better)", "",
              "| strategy | " + " | ".join(s.per_language) + " |", "|---" * (1 + len(s.per_language)) + "|"]
    for name, a in s.strategies.items():
        distances = [a.test[task].get("multi", {}).get("rank_distance") for task in s.per_language]
        lines.append(f"| {name} | " + " | ".join(_fmt(d, 1, spread) for d in distances) + " |")
    lines += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in plots]
    lines += ["", "Every number above, per run and per strategy, is in `results.json`; each run's log, checkpoints "
              "and best model are under `runs/<cell>/`.", ""]
    return "\n".join(lines)

