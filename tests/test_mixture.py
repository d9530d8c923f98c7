"""Training mixtures: sources drawn by weight or temperature, one code per language across sources, what was drawn
logged as drawn; real XQuAD-R pairs and FLORES-200 lines."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import polyir
from polyir.config import DataConfig, TrainSource
from polyir.data.mixture import read_mixture
from polyir.errors import InputError
from polyir.training.sampling import BatchSampler
from tests.helpers import polyir as run
from tests.test_train import log_of, write_config


@pytest.fixture(scope="module")
def flores_pairs(data_dir, tmp_path_factory):
    """A FLORES-200 bitext source written with the registry's codes (eng_Latn, swh_Latn), 60 examples."""
    folder = data_dir / "flores-sib200"
    english = (folder / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()
    swahili = (folder / "swh_Latn.txt").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("flores") / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"flores-{i}", "query": {"eng_Latn": en, "swh_Latn": sw},
                                        "positive": {"eng_Latn": en, "swh_Latn": sw}}, ensure_ascii=False) + "\n"
                            for i, (en, sw) in enumerate(zip(english[:60], swahili[:60]))), encoding="utf-8")
    return path


def draws(mixture, batches=300, batch_size=8, strategy="xy", languages=None):
    sampler = BatchSampler(mixture.examples, batch_size, strategy, languages=languages, seed=0,
                           sources=mixture.sources, probabilities=mixture.probabilities)
    for _ in range(batches):
        yield sampler.next_batch()


def test_sources_are_drawn_by_their_weights_and_by_temperature(small_xquad, flores_pairs):
    xquad = small_xquad / "train.jsonl"
    by_id = {}
    for weights, temperature in (((1.0, 3.0), None), ((None, None), 0.5)):
        sources = [TrainSource(path=xquad, weight=weights[0]), TrainSource(path=flores_pairs, weight=weights[1])]
        mixture = read_mixture(sources, temperature)
        by_id = {e.id: s for e, s in zip(mixture.examples, mixture.sources)}
        sizes = Counter(mixture.sources)
        expected = 0.75 if temperature is None else sizes[1] ** 0.5 / (sizes[0] ** 0.5 + sizes[1] ** 0.5)
        assert mixture.probabilities[1] == pytest.approx(expected)
        counts = Counter()
        for batch in draws(mixture):
            ids = [pair.example.id for pair in batch]
            assert len(set(ids)) == len(ids), "never two versions of one example in a batch"
            counts.update(by_id[i] for i in ids)
        share = counts[1] / sum(counts.values())
        # 2,400 pairs: the binomial standard deviation is below 0.01; within 0.03 of the target
        assert share == pytest.approx(expected, abs=0.03), (weights, temperature, share)


def test_one_code_per_language_across_sources(small_xquad, flores_pairs, tmp_path):
    mixture = read_mixture([TrainSource(path=small_xquad / "train.jsonl"), TrainSource(path=flores_pairs)])
    languages = {lang for example in mixture.examples for lang in example.languages}
    assert "en" in languages and "eng_Latn" not in languages and "swh_Latn" in languages
    assert mixture.probabilities is None and len(set(mixture.names)) == 2  # two train.jsonl: named by path
    flores = [e for e, s in zip(mixture.examples, mixture.sources) if s == 1]
    assert set(flores[0].query) == {"en", "swh_Latn"}
    both = tmp_path / "both.jsonl"
    both.write_text(json.dumps({"id": "x", "query": {"en": "a", "eng_Latn": "b"}, "positive": {"en": "c"}}) + "\n")
    with pytest.raises(InputError, match="twice in one language"):
        read_mixture([TrainSource(path=both)])
    with pytest.raises(InputError, match="also in"):
        read_mixture([TrainSource(path=flores_pairs), TrainSource(path=flores_pairs)])
    with pytest.raises(ValueError, match="on every source, or on none"):
        DataConfig(train=[{"path": "a", "weight": 1}, {"path": "b"}])
    # data.languages may name a language by any of its codes: eng_Latn is the mixture's en, sw its swh_Latn
    sampler = BatchSampler(mixture.examples, 8, "xy", languages=["eng_Latn", "sw"], seed=0)
    assert sampler.languages == ["en", "swh_Latn"]
    with pytest.raises(InputError, match="data.languages: yo not in the training data"):
        BatchSampler(mixture.examples, 8, "xy", languages=["en", "yo"], seed=0)


def test_a_mixture_trains_and_logs_what_it_drew(tiny_m2m100, small_xquad, flores_pairs, tmp_path):
    """The sources of the pairs a run drew, as logged per evaluation interval, are those of the sampler's batches
    replayed apart from the run."""
    xquad, flores = tmp_path / "xquad.jsonl", tmp_path / "flores.jsonl"
    xquad.write_bytes((small_xquad / "train.jsonl").read_bytes())
    flores.write_bytes(flores_pairs.read_bytes())
    sources = [{"path": str(xquad), "weight": 1.0}, {"path": str(flores), "weight": 3.0}]
    config = write_config(tmp_path / "mix.yaml", tmp_path / "mix", tiny_m2m100, small_xquad,
                          **{"data.train": sources, "data.languages": ["de", "en", "es", "swh_Latn"],
                             "optim.max_steps": 4, "sampling.strategy": "xy", "eval.every_steps": 2})
    polyir.train(config, show_progress=False)
    logged = Counter()
    for drawn in (e["drawn"] for e in log_of(tmp_path / "mix") if "drawn" in e):
        logged.update(drawn["sources"])
    mixture = read_mixture([TrainSource(**source) for source in sources])
    names = {e.id: mixture.names[s] for e, s in zip(mixture.examples, mixture.sources)}
    replayed = Counter(names[pair.example.id] for batch in draws(mixture, batches=4,
                                                                 languages=["de", "en", "es", "swh_Latn"])
                       for pair in batch)
    assert logged == replayed and sum(logged.values()) == 32 and set(logged) == {"xquad.jsonl", "flores.jsonl"}
    from polyir.results import sum_drawn  # what results.json and the report's table sum

    total = sum_drawn([e["drawn"] for e in log_of(tmp_path / "mix") if "drawn" in e])
    assert total["sources"] == dict(replayed) and total["xy"] == 32
    bad = write_config(tmp_path / "bad.yaml", tmp_path / "bad", tiny_m2m100, small_xquad,
                       **{"data.train": [{"path": str(flores), "weight": 1.0}, {"path": str(xquad)}]})
    result = run("train", "--config", bad, "--quiet")
    assert result.returncode == 2 and "on every source, or on none" in result.stderr
