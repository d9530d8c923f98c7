"""The report's uncertainty: bootstrap intervals that cover a known difference as often as they claim, with and
without seeds, and Holm's correction against a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest

from polyir.comparison.uncertainty import bootstrap_change, holm


def test_intervals_cover_a_known_difference_about_95_times_in_100():
    rng = np.random.default_rng(1)
    truth, covered = 0.05, 0
    for trial in range(200):
        differences = truth + rng.normal(0, 0.2, size=300)
        mean, low, high, _ = bootstrap_change(differences, seed=trial, resamples=500)
        covered += low <= truth <= high
        assert low < mean < high
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_seeds_widen_the_interval_when_training_randomness_is_large():
    """Two seeds that disagree by much more than the query noise: the hierarchical interval must cover both
    seeds' means, where an interval over queries alone (one seed's mean) would not."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, size=(2, 400))
    differences = noise + np.array([[-0.1], [0.1]])
    _, low, high, p = bootstrap_change(differences, resamples=1000)
    assert low <= -0.09 and high >= 0.09 and p > 0.05
    _, low_one, high_one, _ = bootstrap_change(differences.mean(axis=0, keepdims=True), resamples=1000)
    assert high_one - low_one < (high - low) / 5


def test_p_values_say_which_side_of_zero():
    rng = np.random.default_rng(2)
    assert bootstrap_change(-0.1 + rng.normal(0, 0.1, 200))[3] <= 0.001
    assert bootstrap_change(rng.normal(0, 0.1, 200))[3] > 0.05
    assert bootstrap_change(np.zeros(50)) == (0.0, 0.0, 0.0, 1.0)


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    adjusted = holm([0.01, float("nan")])
    assert adjusted[0] == 0.01 and adjusted[1] != adjusted[1]
