"""The step strategies on a tiny M2M-100 with dropout on: GradCache gives the full-batch gradient exactly."""

from __future__ import annotations

import torch

from polyir.config import StepConfig
from polyir.models.biencoder import BiEncoder
from polyir.training.batch import Batch
from polyir.training.loss import InfoNCE
from polyir.training.passes import CPU_CHUNK_SIZE, ForwardPasses, forward_passes
from polyir.training.sampling import BatchSampler
from polyir.training.steps import Accumulation, FullBatch, GradCache, make_step

TEMPERATURE = 0.05
loss = InfoNCE(TEMPERATURE, symmetric=True)


def pairs_with_negatives(examples, n=12):
    return BatchSampler(examples, n, "xy", seed=0).next_batch()


def gradients(model: BiEncoder) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None])


def run(model, strategy, pairs, seed=0) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = strategy.backward(Batch.of(model, pairs))
    assert isinstance(value, torch.Tensor) and value.ndim == 0  # no host synchronisation inside the step
    return float(value), gradients(model)


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def assert_gradcache_replays_dropout(model: BiEncoder, pairs) -> None:
    """GradCache equals the full batch in forward passes of 4 texts, which draws its dropout masks group by group
    as GradCache does; without the random-state replay the second pass draws other masks, and the gradient is
    wrong."""
    reference_loss, reference = run(model, FullBatch(model, loss, chunk_size=4), pairs)
    cached_loss, cached = run(model, GradCache(model, loss, chunk_size=4), pairs)
    assert abs(cached_loss - reference_loss) < 1e-6
    assert relative_error(cached, reference) <= 1e-5
    _, wrong = run(model, GradCache(model, loss, chunk_size=4, replay_random_state=False), pairs)
    assert relative_error(wrong, reference) > 1e-3


def test_gradcache_equals_full_batch_with_dropout(tiny_m2m100, parallel_examples):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.train()
    assert model.draws_random_numbers
    pairs = pairs_with_negatives(parallel_examples)
    assert any(p.negative for p in pairs)
    assert_gradcache_replays_dropout(model, pairs)
    # the random state after the step is the one after the first pass, as in a full-batch step
    torch.manual_seed(0)
    model.zero_grad(set_to_none=True)
    GradCache(model, loss, chunk_size=4).backward(Batch.of(model, pairs))
    after_cached = torch.rand(3)
    torch.manual_seed(0)
    FullBatch(model, loss, chunk_size=4).backward(Batch.of(model, pairs))
    assert torch.equal(torch.rand(3), after_cached)


def test_no_replay_without_dropout(tiny_m2m100, tiny_m2m100_no_dropout, parallel_examples):
    """Replaying random states is needed only when a forward pass draws random numbers."""
    model = BiEncoder.from_pretrained(tiny_m2m100_no_dropout)
    model.train()
    assert not model.draws_random_numbers
    with_dropout = BiEncoder.from_pretrained(tiny_m2m100)
    assert with_dropout.draws_random_numbers and not with_dropout.eval().draws_random_numbers
    pairs = pairs_with_negatives(parallel_examples)
    full_loss, full = run(model, FullBatch(model, loss), pairs)
    cached_loss, cached = run(model, GradCache(model, loss, chunk_size=4), pairs)
    assert abs(cached_loss - full_loss) < 1e-6
    assert relative_error(cached, full) <= 1e-5


def test_forward_groups_do_not_change_the_result(tiny_m2m100, parallel_examples):
    """Texts go through the encoder in groups of similar length: any group size gives the same loss and
    gradient (up to float rounding), and each text's embedding is the one it gets alone, unpadded."""
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.eval()
    pairs = pairs_with_negatives(parallel_examples)
    one_loss, one = run(model, FullBatch(model, loss, chunk_size=1), pairs)
    for size in (3, 7, CPU_CHUNK_SIZE):
        value, grads = run(model, FullBatch(model, loss, chunk_size=size), pairs)
        assert abs(value - one_loss) < 1e-5
        assert relative_error(grads, one) <= 1e-5
    batch = Batch.of(model, pairs)
    assert len(batch.texts) == 2 * len(pairs) + sum(p.negative is not None for p in pairs)
    alone = torch.stack([model(**model.collate([text]))[0] for text in batch.texts])
    with torch.no_grad():
        grouped = ForwardPasses(model, batch, 5).embed(model)
    assert torch.allclose(grouped, alone, atol=1e-5)


def test_passes_bounded_in_positions_hold_more_short_texts(tiny_m2m100, parallel_examples):
    """A bound on padded positions per pass (what GradCache's "auto" sets from memory): no pass exceeds it, a
    single text longer than it still gets its own pass, and queries, being shorter, go in fewer, larger passes."""
    assert forward_passes([9, 7, 7, 4, 2], None, 14) == [slice(0, 1), slice(1, 3), slice(3, 5)]
    assert forward_passes([20, 3], 5, 10) == [slice(0, 1), slice(1, 2)]  # longer than the bound: alone
    assert forward_passes([4] * 7, 3, None) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    model = BiEncoder.from_pretrained(tiny_m2m100)
    batch = Batch.of(model, [p for p in pairs_with_negatives(parallel_examples) if p.negative is None])
    groups = ForwardPasses(model, batch, None, chunk_tokens=200)
    shapes = [tuple(inputs["input_ids"].shape) for inputs in groups.inputs]
    assert all(rows * length <= 200 for rows, length in shapes)
    assert sum(rows for rows, _ in shapes) == len(batch.texts)
    query_passes = len(forward_passes(sorted(map(len, batch.queries), reverse=True), None, 200))
    assert 0 < query_passes < len(shapes)  # queries first, then passages
    assert max(rows for rows, _ in shapes[:query_passes]) > max(rows for rows, _ in shapes[query_passes:])


def test_auto_chunk_on_cpu_is_the_default_chunk_size(tiny_m2m100, parallel_examples):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    step = make_step(StepConfig(strategy="gradcache", batch_size=12), model, loss)
    assert step.chunk_size == "auto"
    run(model, step, pairs_with_negatives(parallel_examples))
    assert step.chunk_size == CPU_CHUNK_SIZE
    assert make_step(StepConfig(batch_size=12), model, loss).chunk_size == CPU_CHUNK_SIZE  # GPU: test_cuda


def test_gradcache_and_accumulation_k1_equal_full_batch_without_dropout(tiny_m2m100, parallel_examples):
    model = BiEncoder.from_pretrained(tiny_m2m100)
    model.eval()  # no dropout: one forward over the whole batch is the reference
    pairs = pairs_with_negatives(parallel_examples)
    full_loss, full = run(model, FullBatch(model, loss), pairs)
    for strategy in (GradCache(model, loss, chunk_size=5), GradCache(model, loss, None, chunk_tokens=120),
                     Accumulation(model, loss, micro_batch_size=12)):
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
    # negative control: the gradient of a loss 20% off in temperature lies far outside that tolerance
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, wrong = run(model, GradCache(model, InfoNCE(TEMPERATURE * 1.2, symmetric=True), chunk_size=4), pairs)
    assert relative_error(wrong, full) > 0.1


def test_compiled_encoder_gives_the_eager_gradient(tiny_m2m100, parallel_examples):
    """torch.compile (inductor, here on CPU) changes how the encoder runs, not what it computes or how its
    weights are named, so checkpoints and saved models stay the same."""
    pairs = pairs_with_negatives(parallel_examples)
    eager = BiEncoder.from_pretrained(tiny_m2m100).eval()
    eager_loss, reference = run(eager, GradCache(eager, loss, chunk_size=5), pairs)
    compiled = BiEncoder.from_pretrained(tiny_m2m100).eval().compile_encoder()
    assert list(compiled.backbone.state_dict()) == list(eager.backbone.state_dict())
    value, grads = run(compiled, GradCache(compiled, loss, chunk_size=5), pairs)
    assert abs(value - eager_loss) < 1e-5
    assert relative_error(grads, reference) <= 1e-4


def test_compiled_gradcache_replays_dropout_exactly(tiny_m2m100, parallel_examples):
    """Compiled code draws its own random numbers (inductor), in a graph without autograd for GradCache's first
    pass and with it for the second: replaying the generator state must still give the second pass the first
    pass's dropout masks, so GradCache equals the compiled full batch drawn group by group."""
    model = BiEncoder.from_pretrained(tiny_m2m100).train().compile_encoder()
    assert model.draws_random_numbers
    assert_gradcache_replays_dropout(model, pairs_with_negatives(parallel_examples))


def test_loader_tokenises_ahead_and_checkpoints_the_handed_out_position(tiny_m2m100, parallel_examples):
    from polyir.distributed import SINGLE
    from polyir.training.loader import BatchLoader

    model = BiEncoder.from_pretrained(tiny_m2m100)
    sampler, reference = BatchSampler(parallel_examples, 6, "hybrid", seed=3), BatchSampler(
        parallel_examples, 6, "hybrid", seed=3)
    loader = BatchLoader(sampler, model, SINGLE)
    try:
        for _ in range(3):
            pairs, batch = loader.next()
            expected = reference.next_batch()
            assert pairs == expected
            assert batch == Batch.of(model, expected)  # the thread's tokenizer copy gives the same ids
            # the sampler has drawn one batch ahead, but the checkpointed position is after `pairs`
            assert loader.position == reference.state_dict() != sampler.state_dict()
    finally:
        loader.close()


def test_bf16_compute_weights_sum_gradients_into_float32_masters(tiny_m2m100, parallel_examples):
    """`precision: bf16-weights`: the passes run on a bf16 copy, and every gradient lands in the float32 encoder,
    where GradCache's passes are summed in float32; the result tracks the float32 gradient up to bf16 rounding."""
    pairs = pairs_with_negatives(parallel_examples)
    reference_model = BiEncoder.from_pretrained(tiny_m2m100).eval()
    reference_loss, reference = run(reference_model, FullBatch(reference_model, loss), pairs)
    model = BiEncoder.from_pretrained(tiny_m2m100).eval()
    compute = model.compute_in(torch.bfloat16)
    assert next(model.running_encoder.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.encoder.parameters())
    assert list(model.backbone.state_dict()) == list(reference_model.backbone.state_dict())
    value, grads = run(model, GradCache(model, loss, chunk_size=4), pairs)
    assert all(p.grad is None for p in compute.module.parameters())
    assert all(p.grad.dtype == torch.float32 for p in model.encoder.parameters() if p.grad is not None)
    assert grads.numel() == reference.numel()
    assert abs(value - reference_loss) < 0.01 * abs(reference_loss)
    assert 0 < relative_error(grads, reference) < 0.05
    # negative control: the bf16 tolerance does not hide a wrong gradient (a loss 20% off in temperature)
    _, wrong = run(model, GradCache(model, InfoNCE(TEMPERATURE * 1.2, symmetric=True), chunk_size=4), pairs)
    assert relative_error(wrong, reference) > 0.1


def test_bf16_compute_weights_keep_updates_too_small_for_bf16(tiny_m2m100, parallel_examples):
    """The optimiser steps the float32 masters: an update below bf16's resolution is kept there (it would be lost
    on bf16 weights), and the compute copy is refreshed from the masters."""
    model = BiEncoder.from_pretrained(tiny_m2m100).eval()
    compute = model.compute_in(torch.bfloat16)
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=1e-5)
    optimizer.register_step_post_hook(lambda *_: compute.refresh())
    before = [p.detach().clone() for p in model.encoder.parameters()]
    run(model, GradCache(model, loss, chunk_size=4), pairs_with_negatives(parallel_examples))
    optimizer.step()
    after = list(model.encoder.parameters())
    changed = sum(int((a != b).sum()) for a, b in zip(after, before))
    visible_in_bf16 = sum(int((a.bfloat16() != b.bfloat16()).sum()) for a, b in zip(after, before))
    assert changed > 10 * visible_in_bf16 > 0, (changed, visible_in_bf16)  # some moved: the refresh shows
    assert all(torch.equal(c, a.bfloat16()) for c, a in zip(compute.module.parameters(), after))


def test_gradcache_replays_dropout_on_bf16_compute_weights(tiny_m2m100, parallel_examples):
    """With dropout on, GradCache on the bf16 copy matches the full batch drawn group by group (up to the bf16
    sums inside the full batch's single backward pass), and is far off without the random-state replay."""
    model = BiEncoder.from_pretrained(tiny_m2m100).train()
    model.compute_in(torch.bfloat16)
    assert model.draws_random_numbers and model.compute.module.training
    pairs = pairs_with_negatives(parallel_examples)
    _, reference = run(model, FullBatch(model, loss, chunk_size=4), pairs)
    _, cached = run(model, GradCache(model, loss, chunk_size=4), pairs)
    _, wrong = run(model, GradCache(model, loss, chunk_size=4, replay_random_state=False), pairs)
    assert relative_error(cached, reference) < 0.01
    assert relative_error(wrong, reference) > 0.05
