"""InfoNCE against a calculation written apart from loss.py, in plain Python: every equivalence test of the step
strategies calls the same loss on both sides, so this is what says the loss itself is right."""

from __future__ import annotations

import math
import random

import pytest
import torch

from polyir.training.loss import InfoNCE


def by_hand(q, p, negatives, temperature, symmetric):
    """Mean over queries of -log softmax(similarity / t)[positive]; candidates: every passage, then every hard
    negative. Symmetric: the mean of that and the passage-to-query term over the batch's queries."""
    def dot(a, b):
        return sum(x * y for x, y in zip(a, b))

    def term(anchor, candidates, positive):
        logits = [dot(anchor, c) / temperature for c in candidates]
        top = max(logits)
        return -(logits[positive] - top - math.log(sum(math.exp(v - top) for v in logits)))

    forward = [term(q[i], p + negatives, i) for i in range(len(q))]
    if not symmetric:
        return sum(forward) / len(q)
    backward = [term(p[i], q, i) for i in range(len(q))]
    return sum((f + b) / 2 for f, b in zip(forward, backward)) / len(q)


@pytest.mark.parametrize(("temperature", "symmetric", "hard"), [(0.05, False, 0), (0.05, True, 0),
                                                                 (0.1, False, 3), (0.02, True, 2)])
def test_info_nce_is_the_hand_calculation(temperature, symmetric, hard):
    rng = random.Random(7)
    vectors = [[rng.gauss(0, 1) for _ in range(6)] for _ in range(2 * 5 + hard)]
    vectors = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in vectors]
    q, p, n = vectors[:5], vectors[5:10], vectors[10:]
    loss = InfoNCE(temperature, symmetric)
    value = loss(torch.tensor(q), torch.tensor(p), torch.tensor(n) if hard else None)
    assert float(value) == pytest.approx(by_hand(q, p, n, temperature, symmetric), rel=1e-5)


def test_rows_and_denominator_split_the_mean_into_parts_that_sum_to_it():
    """Under data parallelism each rank sums its own rows and divides by the global batch: the parts add up to
    the whole batch's mean."""
    generator = torch.Generator().manual_seed(3)
    q, p = torch.randn(8, 4, generator=generator), torch.randn(8, 4, generator=generator)
    loss = InfoNCE(0.1, symmetric=True)
    parts = loss(q, p, rows=slice(0, 3), denominator=8) + loss(q, p, rows=slice(3, 8), denominator=8)
    assert float(parts) == pytest.approx(float(loss(q, p)), rel=1e-6)
    assert float(loss(q, p, rows=slice(0, 3))) != pytest.approx(float(loss(q, p)), rel=1e-3)
