"""The step strategies on a tiny M2M-100 with dropout on: GradCache gives the full-batch gradient exactly."""

from __future__ import annotations

import torch

from polyir.loss import info_nce
from polyir.model import BiEncoder
from polyir.sampling import BatchSampler
from polyir.steps import Accumulation, FullBatch, GradCache, Inputs, by_length

TEMPERATURE = 0.05


def loss(q, p, n, rows=None, denominator=None):
    return info_nce(q, p, TEMPERATURE, n, symmetric=True, rows=rows, denominator=denominator)


def pairs_with_negatives(examples, n=12):
    return BatchSampler(examples, n, "xy", seed=0).next_batch()


def gradients(model: BiEncoder) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])


def run(model, strategy, pairs, seed=0) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = strategy.backward(pairs)
    return value, gradients(model)


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def test_gradcache_equals_full_batch_with_dropout(tiny_m2m100, parallel_examples):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.train()
    pairs = pairs_with_negatives(parallel_examples)
    assert any(p.negative for p in pairs)
    # the full-batch reference draws dropout masks chunk by chunk, in GradCache's order, all in one graph
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    ordered = by_length(pairs)  # GradCache chunks the batch in order of length
    parts = [Inputs.of(model, ordered[i:i + 4]).embed(model) for i in range(0, 12, 4)]
    joined = {k: torch.cat([p[k] for p in parts if p[k] is not None]) for k in ("query", "passage", "negative")}
    reference_loss = loss(joined["query"], joined["passage"], joined["negative"])
    reference_loss.backward()
    reference = gradients(model)
    cached_loss, cached = run(model, GradCache(model, loss, chunk_size=4), pairs)
    assert abs(cached_loss - reference_loss.item()) < 1e-6
    assert relative_error(cached, reference) <= 1e-5
    # without the random-state replay the second pass draws other masks, and the gradient is wrong
    _, wrong = run(model, GradCache(model, loss, chunk_size=4, replay_random_state=False), pairs)
    assert relative_error(wrong, reference) > 1e-3


def test_gradcache_and_accumulation_k1_equal_full_batch_without_dropout(tiny_m2m100, parallel_examples):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.eval()  # no dropout: one forward over the whole batch is the reference
    pairs = pairs_with_negatives(parallel_examples)
    full_loss, full = run(model, FullBatch(model, loss), pairs)
    for strategy in (GradCache(model, loss, chunk_size=5), Accumulation(model, loss, micro_batch_size=12)):
        value, grads = run(model, strategy, pairs)
        assert abs(value - full_loss) < 1e-6
        assert relative_error(grads, full) <= 1e-5


def test_accumulation_with_several_micro_batches_is_not_the_full_batch(tiny_m2m100, parallel_examples):
    """Each micro-batch is its own contrastive problem with 3 in-batch negatives instead of 11: its loss is lower
    (fewer negatives in the softmax) and its gradient differs, which is why the comparison matters."""
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.eval()
    pairs = pairs_with_negatives(parallel_examples)
    full_loss, full = run(model, FullBatch(model, loss), pairs)
    value, grads = run(model, Accumulation(model, loss, micro_batch_size=4), pairs)
    assert value < full_loss
    assert relative_error(grads, full) > 1e-2
    # and it equals the mean of the three micro-batch problems solved one by one
    manual = torch.zeros_like(full)
    for i in range(0, 12, 4):
        _, g = run(model, FullBatch(model, loss), pairs[i:i + 4])
        manual += g / 3
    assert relative_error(grads, manual) <= 1e-5


def test_gradcache_under_bf16_autocast_tracks_full_batch(tiny_m2m100, parallel_examples):
    """Under bf16 autocast the two strategies round differently, so equality is approximate; the loss on the
    cached embeddings is computed in fp32 either way."""
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.eval()
    pairs = pairs_with_negatives(parallel_examples)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full_loss, full = run(model, FullBatch(model, loss), pairs)
        cached_loss, cached = run(model, GradCache(model, loss, chunk_size=4), pairs)
    assert all(p.grad.dtype == torch.float32 for p in model.encoder.parameters() if p.grad is not None)
    assert abs(cached_loss - full_loss) < 0.05 * abs(full_loss)
    assert relative_error(cached, full) < 0.05
