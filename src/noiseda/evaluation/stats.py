"""Confidence intervals of paired differences: between seeds (the sweep) and between images (compare)."""

from __future__ import annotations

import math
from typing import Optional


def sample_sd(values: list[float]) -> Optional[float]:
    """The sample standard deviation (n - 1 in the denominator); None with fewer than 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def t_interval(diffs: list[float], level: float = 0.95) -> Optional[tuple[float, float]]:
    """Paired t-interval of the mean difference; None with fewer than 2 pairs."""
    n = len(diffs)
    if n < 2:
        return None
    from scipy.stats import t

    mean = sum(diffs) / n
    half = t.ppf(0.5 + level / 2, n - 1) * sample_sd(diffs) / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_interval(diff_rows: list[list[float]], level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> Optional[tuple[float, float]]:
    """Two-level bootstrap of the mean paired difference: ``diff_rows[s][i]`` is the difference
    on image i for seed s. Resamples seeds, then images (one image draw per resample, shared by
    the seeds: the images are the same test set)."""
    import numpy as np

    d = np.asarray(diff_rows, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 1:
        return None
    rng = np.random.default_rng(seed)
    s_idx = rng.integers(0, d.shape[0], size=(resamples, d.shape[0]))
    i_idx = rng.integers(0, d.shape[1], size=(resamples, d.shape[1]))
    stats = np.array([d[s_idx[b]][:, i_idx[b]].mean() for b in range(resamples)])
    lo, hi = np.quantile(stats, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def ratio_interval(num: list[float], den: list[float], level: float = 0.95
                   ) -> tuple[Optional[float], Optional[tuple[float, float]]]:
    """mean(num) / mean(den) for paired values (e.g. per seed: a method's gain over the
    reference, and the oracle's), with a delta-method t-interval: the residuals
    num - R * den have mean 0 and their t half-width, divided by |mean(den)|, is R's.
    (None, None) where mean(den) <= 0: there is no gap to close."""
    n = len(num)
    if n == 0 or n != len(den):
        return None, None
    mean_den = sum(den) / n
    if mean_den <= 0:
        return None, None
    r = (sum(num) / n) / mean_den
    ci = t_interval([a - r * b for a, b in zip(num, den)], level)
    if ci is None:
        return r, None
    half = (ci[1] - ci[0]) / 2 / mean_den
    return r, (r - half, r + half)
