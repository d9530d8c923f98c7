"""Invariants of the batch samplers, on real XQuAD-R training examples (the bundled sample's)."""

from __future__ import annotations

import pytest

from polyir.data.lareqa import read_lareqa, split_articles, training_examples
from polyir.data.records import ParallelExample
from polyir.errors import InputError
from polyir.training.sampling import BatchSampler

TRAIN_LANGS = ["de", "en", "es", "ru"]  # el and vi held out, as in the embedded comparison


@pytest.fixture(scope="module")
def examples(data_dir):
    by_lang = read_lareqa(data_dir / "xquad-r")
    train, _ = split_articles(12, 0.33, 0)
    return training_examples(by_lang, train)


def batches(sampler, n):
    return [sampler.next_planned() for _ in range(n)]


def test_mono_batches_have_one_language(examples):
    sampler = BatchSampler(examples, 32, "xx-mono", languages=TRAIN_LANGS, seed=1)
    for kind, pairs in batches(sampler, 50):
        assert kind == "mono"
        assert len({p.query_lang for p in pairs} | {p.passage_lang for p in pairs}) == 1
    languages = {pairs[0].query_lang for _, pairs in batches(sampler, 200)}
    assert languages == set(TRAIN_LANGS), "every training language is drawn, and only those"


def test_xy_pairs_never_share_a_language_and_xx_pairs_always_do(examples):
    for kind, pairs in batches(BatchSampler(examples, 32, "xy", languages=TRAIN_LANGS, seed=2), 50):
        assert kind == "xy" and all(p.query_lang != p.passage_lang for p in pairs)
        assert len({p.query_lang for p in pairs}) > 1, "languages vary within an X-Y batch"
    for _, pairs in batches(BatchSampler(examples, 32, "xx", languages=TRAIN_LANGS, seed=2), 50):
        assert all(p.query_lang == p.passage_lang for p in pairs)
        assert len({p.query_lang for p in pairs}) > 1, "languages mix within an X-X batch"


def test_no_example_twice_in_a_batch_and_epochs_cover_the_data(examples):
    sampler = BatchSampler(examples, 50, "hybrid", alpha=0.5, languages=TRAIN_LANGS, seed=3)
    plan = sampler.plan_epoch(0)
    seen = []
    for _, pairs in plan:
        ids = [p.example.id for p in pairs]
        assert len(ids) == len(set(ids)), "two versions of one example in a batch"
        seen.extend(ids)
    assert len(seen) == len(set(seen)) and len(seen) == len(examples) // 50 * 50


def test_hybrid_share_of_mono_batches_tends_to_alpha(examples):
    for alpha in (0.2, 0.5, 0.8):
        kinds = [kind for kind, _ in batches(BatchSampler(examples, 8, "hybrid", alpha=alpha, seed=4), 3000)]
        share = kinds.count("mono") / len(kinds)
        assert abs(share - alpha) < 0.03, (alpha, share)


def test_same_seed_same_batches_and_resume_continues_exactly(examples):
    def ids(stream):
        return [[(p.example.id, p.query_lang, p.passage_lang) for p in pairs] for _, pairs in stream]

    first = BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=5)
    reference = ids(batches(first, 40))  # crosses epoch boundaries (3 batches per epoch)
    assert reference == ids(batches(BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=5), 40))
    assert reference != ids(batches(BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=6), 40))
    interrupted = BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=5)
    head = ids(batches(interrupted, 17))
    state = interrupted.state_dict()
    resumed = BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=5)
    resumed.load_state_dict(state)
    assert head + ids(batches(resumed, 23)) == reference
    with pytest.raises(InputError, match="seed"):
        BatchSampler(examples, 64, "hybrid", languages=TRAIN_LANGS, seed=9).load_state_dict(state)


def test_examples_missing_languages_draw_among_their_own():
    examples = [ParallelExample(str(i), {"en": "q", "sw": "q", **({"yo": "q"} if i % 2 else {})},
                                {"en": "p", "sw": "p", **({"yo": "p"} if i % 2 else {})}) for i in range(40)]
    examples += [ParallelExample(f"solo{i}", {"en": "q"}, {"en": "p"}) for i in range(10)]
    for _, pairs in batches(BatchSampler(examples, 4, "xy", seed=0), 100):
        for p in pairs:
            assert p.query_lang in p.example.query and p.passage_lang in p.example.positive
            assert not p.example.id.startswith("solo"), "one-language examples cannot form X-Y pairs"
    proportional = BatchSampler(examples, 4, "xx-mono", weighting="proportional", seed=0)
    langs = [pairs[0].query_lang for _, pairs in batches(proportional, 2000)]
    assert langs.count("en") > langs.count("yo") * 1.5  # en: 50 examples, yo: 20


def test_impossible_batches_are_reported():
    examples = [ParallelExample(str(i), {"en": "q"}, {"en": "p"}) for i in range(10)]
    with pytest.raises(InputError, match="no 'xy' batch"):
        BatchSampler(examples, 4, "xy").next_batch()
    with pytest.raises(InputError, match="exceeds"):
        BatchSampler(examples, 40, "xx")
