"""ContAccum (Kim, Lee, Kang, NeurIPS 2024) on a tiny M2M-100 and real XQuAD-R text: with an empty bank it is naive
accumulation exactly; with a bank, a micro-step's loss and gradient equal a plain-PyTorch computation from the same
representations; a banked translation of the current example is masked; the audit counts what each query saw."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import polyir
from polyir.config import StepConfig
from polyir.models.biencoder import BiEncoder
from polyir.training import checkpoints
from polyir.training.batch import Batch
from polyir.training.loss import InfoNCE
from polyir.training.negatives import meta, stable_id
from polyir.training.passes import ForwardPasses
from polyir.training.sampling import BatchSampler
from polyir.training.steps import Accumulation, ContAccum, GradCache, make_step
from tests.test_train import write_config

TEMPERATURE = 0.05


def gradients(model):
    return torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])


def step(model, strategy, pairs):
    model.zero_grad(set_to_none=True)
    value = strategy.backward(Batch.of(model, pairs))
    return value, gradients(model)


def batches(examples, n=8, count=2, sampling="xy"):
    sampler = BatchSampler(examples, n, sampling, seed=0)
    return [sampler.next_batch() for _ in range(count)]


@pytest.fixture
def model(tiny_m2m100):
    return BiEncoder.from_pretrained(tiny_m2m100).eval()  # no dropout: the same text, the same embedding


@pytest.mark.parametrize("symmetric", [False, True])
def test_an_empty_bank_is_naive_accumulation_bit_for_bit(model, parallel_examples, symmetric):
    loss = InfoNCE(TEMPERATURE, symmetric)
    naive, contaccum = Accumulation(model, loss, 4), ContAccum(model, loss, 4, bank_size=0)
    for pairs in batches(parallel_examples, count=3):
        expected_loss, expected = step(model, naive, pairs)
        actual_loss, actual = step(model, contaccum, pairs)
        assert torch.equal(actual_loss, expected_loss) and torch.equal(actual, expected)


def test_an_empty_bank_trains_the_weights_naive_accumulation_trains(tiny_m2m100, small_xquad, tmp_path):
    """Through the trainer (AdamW, schedule, clipping): three steps of each give the same weights, bit for bit."""
    weights = {}
    for name, step_config in (("naive", {"strategy": "accumulation", "batch_size": 8, "micro_batch_size": 4}),
                              ("contaccum", {"strategy": "contaccum", "batch_size": 8, "micro_batch_size": 4,
                                             "bank_size": 0})):
        config = write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100, small_xquad,
                              step=step_config, **{"optim.max_steps": 3, "eval.every_steps": 3})
        polyir.train(config, show_progress=False)
        weights[name] = load_file(tmp_path / name / "checkpoints" / "step-00000003" / "model.safetensors")
    start = load_file(tiny_m2m100 / "model.safetensors")
    assert weights["naive"].keys() == weights["contaccum"].keys()
    assert all(torch.equal(weights["naive"][k], weights["contaccum"][k]) for k in weights["naive"])
    assert any(not torch.equal(weights["naive"][k], start[k]) for k in start if k in weights["naive"])


def reference_micro_step(model, pairs, banked, symmetric, total_steps):
    """InfoNCE over [local; banked queries] × [local; banked passages; hard negatives], written out: a candidate
    of the row's own example (but its positive) is left out; the sum is divided by K × (b + banked rows)."""
    batch = Batch.of(model, pairs)
    embedded = batch.kinds(ForwardPasses(model, batch, 64).embed(model).float())
    bq, bp, bq_ex, bp_ex = banked
    q = torch.cat([embedded["query"], bq])
    p = torch.cat([embedded["passage"], bp])
    negatives = embedded["negative"] if embedded["negative"] is not None else p[:0]
    examples = [stable_id(pair.example.id) for pair in pairs]
    q_ex = torch.tensor(examples + bq_ex)
    p_ex = torch.tensor(examples + bp_ex + [-1] * len(negatives))
    logits = q @ torch.cat([p, negatives]).T / TEMPERATURE
    labels = torch.arange(len(q))
    same = q_ex[:, None] == p_ex[None, :]
    same[labels, labels] = False
    value = F.cross_entropy(logits.masked_fill(same, float("-inf")), labels, reduction="sum")
    if symmetric:
        back = p[:len(q)] @ q.T / TEMPERATURE
        same = p_ex[:len(q), None] == q_ex[None, :]
        same[labels, labels] = False
        value = (value + F.cross_entropy(back.masked_fill(same, float("-inf")), labels, reduction="sum")) / 2
    value = value / (total_steps * len(q))
    model.zero_grad(set_to_none=True)
    value.backward()
    return value.detach(), gradients(model)


@pytest.mark.parametrize("symmetric", [False, True])
def test_a_micro_step_with_a_bank_equals_the_loss_written_out(model, parallel_examples, symmetric):
    """The bank is filled by a first step; the second step is one micro-step (b = B) against it. The bank holds
    another language of one of the current examples: the reference masks it for that example's rows."""
    loss = InfoNCE(TEMPERATURE, symmetric)
    first, second = batches(parallel_examples, n=8)
    strategy = ContAccum(model, loss, 8, bank_size=12)
    step(model, strategy, first)
    other = next(lang for lang in ("de", "en", "es", "ru") if lang not in (second[0].query_lang,
                                                                             second[0].passage_lang))
    translation = Batch.of(model, [type(second[0])(second[0].example, other, other)])
    with torch.no_grad():
        extra = translation.kinds(ForwardPasses(model, translation, 8).embed(model).float())
    strategy.bank.push(extra["query"], extra["passage"], translation.meta()["query"], translation.meta()["passage"],
                       strategy.steps)
    assert len(strategy.bank) == 9
    bq, bp = strategy.bank.queries.clone(), strategy.bank.passages.clone()
    bq_ex = strategy.bank.query_meta[:, 0].tolist()
    bp_ex = strategy.bank.passage_meta[:, 0].tolist()
    value, grads = step(model, strategy, second)
    expected_value, expected = reference_micro_step(model, second, (bq, bp, bq_ex, bp_ex), symmetric, 1)
    assert float(value) == pytest.approx(float(expected_value), rel=1e-6)
    assert float((grads - expected).norm() / expected.norm()) <= 1e-5
    audit = strategy.audit.mean()
    assert audit["masked_translations"] == pytest.approx(1 / 8), "one query had its translation banked"
    assert audit["banked"] == pytest.approx(9 - 1 / 8)
    assert len(strategy.bank) == 12, "first in, first out: the bank keeps its newest 12"


def test_a_banked_translation_changes_nothing_a_banked_stranger_does(model, parallel_examples):
    """A micro-step of one query against a passage-only bank: banking another language of its own example's
    passage gives the loss and gradient of the bank without it (the rule masks it); banking another example's
    passage, a true negative, does not. (In a larger micro-batch that translation is a true negative of the other
    queries.)"""
    loss = InfoNCE(TEMPERATURE)
    first, second = batches(parallel_examples, n=8)
    query = second[0]
    stranger = next(e for e in parallel_examples if e.id not in {p.example.id for p in first + second})
    lang = next(lang for lang in ("de", "en", "es", "ru") if lang != query.passage_lang)
    results = {}
    for name, added in (("none", None), ("translation", query.example), ("stranger", stranger)):
        strategy = ContAccum(model, loss, 1, bank_size=64, dual=False)
        step(model, strategy, first[:4])
        if added is not None:
            pair = Batch.of(model, [type(query)(added, lang, lang)])
            with torch.no_grad():
                extra = pair.kinds(ForwardPasses(model, pair, 8).embed(model).float())
            strategy.bank.push(extra["query"], extra["passage"], pair.meta()["query"], pair.meta()["passage"], 1)
        results[name] = (*step(model, strategy, [query]), strategy.audit.mean())
    none_loss, none, _ = results["none"]
    same_loss, same, audit = results["translation"]
    assert audit["masked_translations"] == 1 and audit["banked"] == 4
    assert float(same_loss) == pytest.approx(float(none_loss), rel=1e-6)
    assert float((same - none).norm() / none.norm()) <= 1e-6
    stranger_loss, stranger_grads, _ = results["stranger"]
    assert float(stranger_loss) > float(none_loss) and float((stranger_grads - none).norm() / none.norm()) > 1e-4


def test_the_audit_counts_the_negatives_each_strategy_gives(model, parallel_examples):
    """Naive accumulation: b - 1 in-batch negatives; GradCache: B - 1; ContAccum: b - 1 + M once its bank is
    full, M of them banked, made 0 or 1 optimiser steps ago; hard negatives counted apart, nothing masked."""
    loss = InfoNCE(TEMPERATURE)
    pairs = batches(parallel_examples, n=8, count=3, sampling="xx-mono")  # 24 of 97 examples: none twice
    hard = sum(p.negative is not None for p in pairs[2])
    naive, cache, contaccum = Accumulation(model, loss, 4), GradCache(model, loss, chunk_size=8), \
        ContAccum(model, loss, 4, bank_size=8)
    for strategy in (naive, cache, contaccum):
        for batch in pairs:
            step(model, strategy, batch)
    in_batch = {name: s.audit.mean()["in_batch_same_language"] + s.audit.mean()["in_batch_other_language"]
                for name, s in (("naive", naive), ("cache", cache), ("contaccum", contaccum))}
    assert in_batch == {"naive": 3, "cache": 7, "contaccum": 3}
    audit = contaccum.audit.mean()
    assert audit["banked"] == 8 and audit["masked_translations"] == 0 and audit["cross_device"] == 0
    # step 3's first micro-batch sees step 2's 8 (age 1); its second, 4 of step 2 and 4 of its own step (age 0)
    assert audit["banked_age"] == pytest.approx((4 * 8 * 1 + 4 * (4 * 1 + 4 * 0)) / (8 * 8))
    assert cache.audit.mean()["hard"] == pytest.approx(hard)
    assert naive.audit.mean()["hard"] * 2 == pytest.approx(hard)  # each micro-batch: its own half's negatives
    assert cache.audit.mean()["in_batch_other_language"] == 0, "X-X-mono: every candidate in the query's language"


def test_contaccum_configuration_reads_like_the_other_strategies():
    config = StepConfig(strategy="contaccum", batch_size=64, micro_batch_size=16, bank_size=128)
    assert config.label == "contaccum(4×16, bank 128)" and config.slug == "contaccum-64x16-m128"
    ablation = StepConfig(strategy="contaccum", batch_size=64, micro_batch_size=16, bank_size=128, bank="passages")
    assert ablation.slug == "contaccum-64x16-m128p"
    for bad, message in (({"strategy": "contaccum", "micro_batch_size": 8}, "bank_size is required"),
                         ({"strategy": "contaccum", "bank_size": 8}, "micro_batch_size is required"),
                         ({"strategy": "contaccum", "batch_size": 12, "micro_batch_size": 8, "bank_size": 8},
                          "must divide"),
                         ({"strategy": "accumulation", "micro_batch_size": 8, "bank_size": 8}, "for strategy "
                          "'contaccum'")):
        with pytest.raises(ValueError, match=message):
            StepConfig(**bad)


def test_resume_mid_training_is_bit_identical_bank_included(monkeypatch, tiny_m2m100, small_xquad, tmp_path):
    """Killed after step 3's checkpoint: the bank holds steps 2 and 3's representations, which the resumed run
    must have to take step 4 as the uninterrupted run does."""
    overrides = {"step": {"strategy": "contaccum", "batch_size": 8, "micro_batch_size": 4, "bank_size": 12},
                 "optim.max_steps": 5, "checkpoint": {"every_steps": 1, "keep": 10}, "eval.every_steps": 5}

    def config(name):
        return write_config(tmp_path / f"{name}.yaml", tmp_path / name, tiny_m2m100, small_xquad, **overrides)

    polyir.train(config("reference"), show_progress=False)
    save = checkpoints.save

    def killed_after_step_3(folder, number, *args):
        if number == 4:
            raise KeyboardInterrupt
        return save(folder, number, *args)

    monkeypatch.setattr(checkpoints, "save", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        polyir.train(config("killed"), show_progress=False)
    monkeypatch.setattr(checkpoints, "save", save)
    polyir.train(config("killed"), resume=True, show_progress=False)
    reference = checkpoints.load(tmp_path / "reference" / "checkpoints" / "step-00000005",
                                 BiEncoder.from_pretrained(tiny_m2m100).backbone)
    resumed = checkpoints.load(tmp_path / "killed" / "checkpoints" / "step-00000005",
                               BiEncoder.from_pretrained(tiny_m2m100).backbone)
    for key in ("queries", "passages", "query_meta", "passage_meta"):
        assert torch.equal(reference["step_strategy"]["bank"][key], resumed["step_strategy"]["bank"][key])
    expected, actual = (load_file(tmp_path / name / "checkpoints" / "step-00000005" / "model.safetensors")
                        for name in ("reference", "killed"))
    assert expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)
    log = [json.loads(line) for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["negatives"]["banked"] == 12 and log[1]["negatives"]["banked"] == pytest.approx(2)


def test_contaccum_under_bf16_autocast_tracks_float32(model, parallel_examples):
    """bf16 embeddings against a float32 bank: the loss is computed in float32 either way, so the two precisions
    agree to bf16's rounding."""
    pairs = batches(parallel_examples, n=8, count=2)
    losses = {}
    for name, context in (("fp32", torch.autocast("cpu", enabled=False)),
                          ("bf16", torch.autocast("cpu", dtype=torch.bfloat16))):
        strategy = ContAccum(model, InfoNCE(TEMPERATURE), 4, bank_size=8)
        with context:
            losses[name] = [float(step(model, strategy, batch)[0]) for batch in pairs]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=5e-2) and losses["bf16"] != losses["fp32"]


def test_make_step_builds_the_configured_bank(model):
    strategy = make_step(StepConfig(strategy="contaccum", batch_size=8, micro_batch_size=4, bank_size=6,
                                    bank="passages"), model, InfoNCE())
    assert isinstance(strategy, ContAccum) and strategy.bank.size == 6 and not strategy.bank.dual
    assert meta([1], [2]).tolist() == [[1, 2, 0, -1]]
