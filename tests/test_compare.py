"""`polyir compare` end to end on a tiny M2M-100 and real XQuAD-R: report, plots, skip and resume."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from statistics import fmean

import pytest
import yaml
from scipy import stats

from tests.helpers import polyir

GRID = {
    "output_dir": None,
    "model": {"name_or_path": None, "max_query_length": 24, "max_passage_length": 48},
    "dataset": {"name": "xquad-r", "languages": ["de", "en", "es", "el"], "dev": 0.05, "test": 0.05, "seed": 0,
                "bitext": ["swh_Latn", "yor_Latn"], "bitext_dev": 0.25},
    "data": {"languages": ["de", "en", "es"]},
    "grid": {"sampling": [{"strategy": "xy"}, {"strategy": "hybrid", "alpha": 0.5}],
             "step": [{"strategy": "full", "batch_size": 4},
                      {"strategy": "accumulation", "batch_size": 8, "micro_batch_size": 4},
                      {"strategy": "gradcache", "batch_size": 8, "chunk_size": 4},
                      {"strategy": "contaccum", "batch_size": 8, "micro_batch_size": 4, "bank_size": 8}],
             "seeds": [0, 1]},
    "budget": {"examples": 32},
    "optim": {"lr": 2e-3, "warmup_steps": 1},
    "eval": {"every_examples": 16, "metric": "multi/map", "depth": 20},
    "checkpoint": {"every_steps": 1, "keep": 10},
}


def test_compare_writes_the_report_and_skips_or_resumes_runs(tiny_m2m100, data_dir, tmp_path):
    config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "cmp"
    report = (out / "report.md").read_text()
    for section in ("## The question", "## The answer", "## Setup", "## Convergence speed",
                    "## Zero-shot quality", "### xquad-r-test", "### flores-bitext", "per language",
                    "## Language bias", "## Plots"):
        assert section in report, section
    assert "el †" in report, "a language never trained on is flagged"
    for plot in ("dev_vs_step.png", "dev_vs_examples.png", "dev_vs_seconds.png", "per_language.png",
                 "rank_distance.png"):
        assert (out / "plots" / plot).stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 16 and len(results["strategies"]) == 8
    assert results["reference"].startswith("hybrid")
    assert {"multi", "mono", "cross"} <= set(results["significance"]["xquad-r-test"])
    assert all(0.0 <= t["p"] <= 1.0 for t in results["significance"]["xquad-r-test"]["multi"].values())
    assert results["answer"][0].startswith("Convergence")
    assert any(line.startswith("xquad-r-test, multi map") for line in results["answer"])
    means = {name: s["test"]["xquad-r-test"]["multi"]["map"][0] for name, s in results["strategies"].items()}
    best = max(means, key=means.get)
    line = next(line for line in results["answer"] if line.startswith("xquad-r-test, multi map"))
    assert line.startswith(f"xquad-r-test, multi map: best {best} ({means[best]:.4f}), ahead of")
    assert "across seeds the lead" in line and "Welch p = " in line and "2 and 2 seeds" in line
    assert "2 seeds per strategy" in " ".join(results["answer"])
    unseen = next(line for line in results["answer"] if line.startswith("On the languages never trained on ("))
    assert unseen.startswith("On the languages never trained on (el, swh_Latn, yor_Latn;")  # eng_Latn is en: trained
    assert any(line.startswith("Against the BM25 baseline (map): xquad-r-test") for line in results["answer"])
    assert "| BM25 (lexical baseline) |" in report
    bm25 = json.loads((out / "bm25" / "result.json").read_text())["test"]["flores-bitext"]
    assert results["lexical"]["flores-bitext"]["cross"]["map"] == bm25["table"]["summary"]["cross"]["map"]
    examples = {run["cell"]: run["curve"][-1]["examples"] for run in results["runs"]}
    assert set(examples.values()) == {32}, "every run gets the same budget of examples"
    the_negatives_each_step_strategy_gives(results, report)
    what_was_drawn(out, results, report)
    recompute_the_report_from_the_runs(out, results)
    read_against_the_untrained_model(out, results, report)
    flores_dev_and_test_lines_apart(out)

    # run again: every cell is complete and skipped
    runs = out / "runs"
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}
    again = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert again.returncode == 0, again.stderr
    assert stamps == {p: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}

    # a half-finished cell (killed after step 2 of 4) resumes and ends exactly where the whole run ended
    cell = runs / "hybrid-a0.5__gradcache-8x4__seed0"
    before = json.loads((cell / "result.json").read_text())
    (cell / "result.json").unlink()
    for checkpoint in sorted((cell / "checkpoints").glob("step-*"))[2:]:
        shutil.rmtree(checkpoint)
    lines = (cell / "log.jsonl").read_text().splitlines()
    (cell / "log.jsonl").write_text("\n".join(lines[:4]) + "\n")
    again = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert again.returncode == 0, again.stderr
    after = json.loads((cell / "result.json").read_text())
    assert after["test"] == before["test"]
    assert [e["loss"] for e in after["log"]] == [e["loss"] for e in before["log"]]


def what_was_drawn(out, results, report):
    """The composition each run drew, logged per evaluation interval: X-X and X-Y pairs and language pairs add up
    to the run's examples; X-Y runs draw only X-Y pairs; the report has the table."""
    for run in results["runs"]:
        log = [json.loads(line) for line in (out / "runs" / run["cell"] / "log.jsonl").read_text().splitlines()]
        intervals = [e["drawn"] for e in log if "drawn" in e]
        assert sum(d["xx"] + d["xy"] for d in intervals) == log[-1]["examples"] == 32, run["cell"]
        assert run["drawn"]["xx"] + run["drawn"]["xy"] == sum(run["drawn"]["languages"].values()) == 32
        if run["strategy"].startswith("xy"):
            assert run["drawn"]["xx"] == 0 and all("->" in key for key in run["drawn"]["languages"])
    assert "## What the samplers drew" in report and "| xy + full(4) | 64 | 0% | 100% |" in report


def the_negatives_each_step_strategy_gives(results, report):
    """The audit, per query and mean over steps: b - 1 = 3 in-batch negatives for naive accumulation and ContAccum,
    B - 1 = 7 for GradCache, 3 for the full batch of 4; ContAccum's bank of 8 fills over its first step (0, then 4
    banked) and holds 8 from then on: (0 + 4 + 6 × 8) / 8 micro-steps = 6.5 per query over its 4 steps."""
    negatives = {name.split(" + ")[1]: s["negatives"] for name, s in results["strategies"].items()
                 if name.startswith("xy")}
    in_batch = {step: n["in_batch_same_language"] + n["in_batch_other_language"] for step, n in negatives.items()}
    assert in_batch == {"full(4)": 3, "accumulation(2×4)": 3, "gradcache(8, chunk 4)": 7,
                        "contaccum(2×4, bank 8)": 3}
    assert negatives["contaccum(2×4, bank 8)"]["banked"] == pytest.approx((0 + 4 + 6 * 8) / 8)
    assert all(n["banked"] == 0 for step, n in negatives.items() if not step.startswith("contaccum"))
    assert "## Negatives per query" in report and "| xy + contaccum(2×4, bank 8) | " in report
    line = next(line for line in results["answer"] if line.startswith("Step strategies, map averaged over samplers"))
    assert "contaccum(2×4, bank 8)" in line and "gradcache(8, chunk 4)" in line and "accumulation(2×4)" in line


def recompute_the_report_from_the_runs(out, results):
    """The report's numbers, worked out again from each run's own log.jsonl and result.json with scipy, apart
    from polyir's analysis code: the target, every run's steps to it, and each strategy's paired test."""
    curves = {}
    for run in results["runs"]:
        log = [json.loads(line) for line in (out / "runs" / run["cell"] / "log.jsonl").read_text().splitlines()]
        curves[run["cell"]] = [(e["step"], fmean(task["multi"]["map"] for task in e["dev"].values()))
                               for e in log if "dev" in e]
    target = 0.95 * max(value for curve in curves.values() for _, value in curve)
    assert results["target"] == pytest.approx(target)
    for run in results["runs"]:
        first = next((step for step, value in curves[run["cell"]] if value >= target), None)
        assert run["convergence"]["step"] == first, run["cell"]
    strategies = results["strategies"]
    for name, summary in strategies.items():
        steps = [r["convergence"]["step"] for r in results["runs"] if r["strategy"] == name]
        assert summary["step_to_target"] == (fmean(steps) if None not in steps else None)

    def per_query(strategy):  # (language, query) -> map averaged over seeds, from result.json
        values = defaultdict(list)
        for run in results["runs"]:
            if run["strategy"] == strategy:
                result = json.loads((out / "runs" / run["cell"] / "result.json").read_text())
                for lang, queries in result["test"]["xquad-r-test"]["per_query"]["multi"].items():
                    for qid, metrics in queries.items():
                        values[lang, qid].append(metrics["map"])
        return {unit: fmean(v) for unit, v in values.items()}

    reference = per_query(results["reference"])
    for name, test in results["significance"]["xquad-r-test"]["multi"].items():
        other = per_query(name)
        units = sorted(reference)
        assert test["n"] == len(units)
        assert test["difference"] == pytest.approx(fmean(other[u] - reference[u] for u in units))
        differences = [other[u] - reference[u] for u in units]
        expected = 1.0 if not any(differences) else stats.ttest_rel([other[u] for u in units],
                                                                   [reference[u] for u in units]).pvalue
        assert test["p"] == pytest.approx(expected)


def read_against_the_untrained_model(out, results, report):
    """The untrained model is evaluated once: it is every cell's step 0, the first row of the tables, and the
    languages where a strategy ends below it are exactly those the report flags."""
    untrained = json.loads((out / "untrained" / "result.json").read_text())
    assert set(untrained["dev"]) == {"xquad-r-dev", "flores-dev"}
    for run in results["runs"]:
        first = json.loads((out / "runs" / run["cell"] / "log.jsonl").read_text().splitlines()[0])
        assert first["step"] == 0 and first["dev"] == untrained["dev"], run["cell"]
    assert report.count("| untrained (step 0) |") == 2  # xquad-r-test and flores-bitext
    expected = set()
    for task, evaluation in untrained["test"].items():
        for setting in ("mono", "cross", "multi"):
            for key, values in evaluation["table"].get(setting, {}).items():
                assert results["untrained_per_language"][task][setting][key] == values["map"]
                shown = setting != "cross" or task == "flores-bitext"  # pairs are read by language only there
                for strategy, value in results["per_language"][task][setting][key].items():
                    if value < values["map"] and shown:
                        expected.add((strategy, task, setting, key))
    found = {(b["strategy"], b["task"], b["setting"], b["key"]) for b in results["below_untrained"]}
    assert found == expected
    assert any(line.startswith(("Below the untrained model", "No strategy ends below")) for line in results["answer"])
    assert ("↓" in report) == bool(expected)
    changes_recomputed_from_the_per_query_scores(out, results, untrained, report)


def changes_recomputed_from_the_per_query_scores(out, results, untrained, report):
    """Every strategy's change against the untrained model, per language: the mean over queries of (mean over its
    seeds' map − the untrained map), recomputed from result.json files; intervals around it, Holm's p no smaller
    than the raw one; the report's gain-and-loss table, frontier plot and answer line."""
    changes = results["changes"]
    keys = {(t, s, k) for t, e in untrained["test"].items() for s in (("mono", "multi") if t == "xquad-r-test"
                                                                         else ("cross",))
            for k in e["per_query"].get(s, {})}
    assert {(c["task"], c["setting"], c["key"]) for c in changes} == keys
    assert len(changes) == len(keys) * len(results["strategies"])
    runs = {run["cell"]: json.loads((out / "runs" / run["cell"] / "result.json").read_text())
            for run in results["runs"]}
    for change in changes[::7]:
        cells = [r for r in runs.values() if r["strategy"] == change["strategy"]]
        start = untrained["test"][change["task"]]["per_query"][change["setting"]][change["key"]]
        per_seed = [r["test"][change["task"]]["per_query"][change["setting"]][change["key"]] for r in cells]
        expected = fmean(fmean(run[q]["map"] for run in per_seed) - start[q]["map"] for q in start)
        assert change["difference"] == pytest.approx(expected, abs=1e-12)
        assert change["low"] <= change["difference"] <= change["high"] and change["p_holm"] >= change["p"]
        languages = [{"eng_Latn": "en"}.get(k, k) for k in change["key"].split("->")]
        assert change["trained"] == all(lang in {"de", "en", "es"} for lang in languages)
    assert "## Gain and loss against the untrained model" in report and "![frontier.png](plots/frontier.png)" in report
    assert (out / "plots" / "frontier.png").stat().st_size > 10_000
    assert any(line.startswith("Against the untrained model (map per language, 95% bootstrap intervals over "
                               "queries, and seeds, Holm-adjusted") for line in results["answer"])


def flores_dev_and_test_lines_apart(out):
    """bitext_dev: a quarter of the FLORES lines make a pooled dev task, the others the test task."""
    def lines(task):
        rows = [json.loads(line) for line in (out / "data" / task / "queries.jsonl").read_text().splitlines()]
        return {row["_id"].split("-", 1)[1] for row in rows}

    dev, test = lines("flores-dev"), lines("flores-bitext")
    assert len(dev) == 50 and len(test) == 150 and not dev & test


def test_compare_rejects_a_bad_grid(tiny_m2m100, data_dir, tmp_path):
    config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                  budget={"steps": 2, "seconds": 3})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir)
    assert result.returncode == 2 and "exactly one of budget" in result.stderr and "c.yaml" in result.stderr
    for change, message in (({"test": {"interpolate": [0.5, 1.5]}}, "test.interpolate"),
                            ({"grid": dict(GRID["grid"], retention=[{"l2sp": 0.1}, {"l2sp": 0.1}])},
                             "the grid repeats a cell")):
        config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                      **change)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "cmp").exists()
    for tasks, message in ((["miracle:sw"], "no task 'miracle' in the registry; did you mean miracl"),
                           (["flores-200:hau_Latn", "flores-200:yor_Latn"], "two test tasks share a name")):
        config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                      test={"tasks": tasks})
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir,
                        env={"POLYIR_CACHE": tmp_path / "cache"})
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "cmp").exists()


def test_compare_takes_named_tasks_as_test_tasks(tiny_m2m100, data_dir, tmp_path):
    config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                  grid={"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 4}],
                        "seeds": [0]}, budget={"examples": 8}, test={"tasks": ["flores-200:hau_Latn", "ciral:ha"]})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = {"POLYIR_CACHE": tmp_path / "cache", "POLYIR_MIRROR": (tmp_path / "offline").as_uri()}
    result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    assert "test task ciral:ha skipped: 3 file(s) missing" in result.stderr
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert set(results["runs"][0]["test"]) == {"xquad-r-test", "flores-bitext", "flores-200"}
    assert set(results["per_language"]["flores-200"]["cross"]) == {"hau_Latn->eng_Latn"}
    assert "### flores-200" in (tmp_path / "cmp" / "report.md").read_text()
    assert any(line.startswith("One seed per strategy: the p-values are over queries") for line in results["answer"])


def test_interpolation_with_the_starting_model_draws_a_curve_per_strategy(tiny_m2m100, data_dir, tmp_path):
    """test.interpolate: each cell's kept model merged with the starting one at w = 0.5, tested without training;
    the curve runs from the untrained model (w = 0) to the cell (w = 1), and its middle point is what `polyir
    merge` and `polyir evaluate` give by hand."""
    config = dict(GRID, output_dir=str(tmp_path / "cmp"), model=dict(GRID["model"], name_or_path=str(tiny_m2m100)),
                  grid={"sampling": [{"strategy": "xy"}], "step": [{"strategy": "full", "batch_size": 4},
                                                                  {"strategy": "accumulation", "batch_size": 8,
                                                                   "micro_batch_size": 4}], "seeds": [0]},
                  budget={"examples": 16}, test={"interpolate": [0.5], "lexical": False})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "cmp"
    results = json.loads((out / "results.json").read_text())
    points = {(p["strategy"], p["weight"]): p for p in results["interpolation"]}
    assert sorted({w for _, w in points}) == [0.0, 0.5, 1.0] and len(points) == 6
    untrained = results["untrained"]["xquad-r-test"]["multi"]["map"]
    for name, strategy in results["strategies"].items():
        assert points[(name, 0.0)]["test"]["xquad-r-test"]["multi"] == untrained
        as_trained = strategy["test"]["xquad-r-test"]["multi"]["map"][0]
        assert points[(name, 1.0)]["test"]["xquad-r-test"]["multi"] == as_trained
        assert points[(name, 0.5)]["unseen"] is not None and points[(name, 0.5)]["trained"] is not None
    cell = out / "runs" / "xy__full-4__seed0"
    merged = polyir("merge", tiny_m2m100, cell / "model", "--weight", "0.5", "--out", tmp_path / "merged", "--quiet")
    assert merged.returncode == 0, merged.stderr
    by_hand = polyir("evaluate", "--model", tmp_path / "merged", "--task", out / "data" / "xquad-r-test", "--out",
                     tmp_path / "by-hand", "--depth", "100", "--max-query-length", "24", "--max-passage-length", "48",
                     "--quiet")
    assert by_hand.returncode == 0, by_hand.stderr
    expected = json.loads((tmp_path / "by-hand" / "metrics.json").read_text())["xquad-r-test"]["summary"]
    name = next(n for n in results["strategies"] if "full" in n)
    assert points[(name, 0.5)]["test"]["xquad-r-test"]["multi"] == pytest.approx(expected["multi"]["map"], abs=1e-6)
    report = (out / "report.md").read_text()
    assert "## Interpolation with the starting model" in report and f"| {name} | 0.5 | " in report
    assert any(line.startswith("Interpolation with the starting model") for line in results["answer"])
    unseen = next(line for line in results["answer"] if line.startswith("On the languages never trained on"))
    assert ", then " in unseen and ", last " not in unseen  # two strategies: the second is not named twice
    stamp = (cell / "interpolated-0.5" / "result.json").stat().st_mtime_ns
    again = polyir("compare", "--config", tmp_path / "c.yaml", "--data-dir", data_dir, "--quiet")
    assert again.returncode == 0 and (cell / "interpolated-0.5" / "result.json").stat().st_mtime_ns == stamp
