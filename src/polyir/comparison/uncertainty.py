"""How sure a change is: a confidence interval for a strategy's change against the untrained model by a paired
bootstrap over queries (hierarchical, seeds then queries, when there are several seeds), and Holm's correction for
the number of such comparisons a report makes."""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def bootstrap_change(differences: np.ndarray, seed: int = 0, resamples: int = RESAMPLES
                     ) -> tuple[float, float, float, float]:
    """(mean, low, high, p) of per-query differences `differences[seed, query]` (strategy − reference, each seed
    a row; the queries are the same in every row). Each resample draws the seeds with replacement, then the
    queries with replacement, and takes the mean: so the interval covers training randomness as well as the
    choice of queries. p is two-sided: twice the share of resampled means on the far side of zero (at least
    1 / resamples)."""
    differences = np.atleast_2d(np.asarray(differences, dtype=np.float64))
    seeds, queries = differences.shape
    mean = float(differences.mean())
    if queries == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    rows = rng.integers(seeds, size=(resamples, seeds))
    columns = rng.integers(queries, size=(resamples, queries))
    if seeds == 1:
        means = differences[0][columns].mean(axis=1)
    else:
        means = np.array([differences[rows[i]].mean(axis=0)[columns[i]].mean() for i in range(resamples)])
    low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    if np.all(differences == 0):
        return mean, 0.0, 0.0, 1.0
    far = min((means <= 0).mean(), (means >= 0).mean())
    return mean, float(low), float(high), float(min(1.0, max(2 * far, 1 / resamples)))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (NaN stays NaN and is not counted)."""
    order = [i for i in sorted(range(len(pvalues)), key=lambda i: pvalues[i]) if pvalues[i] == pvalues[i]]
    adjusted = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
