"""Confidence intervals of paired differences: between seeds (the sweep) and between images (compare)."""

from __future__ import annotations

import math
from typing import Optional


def t_interval(diffs: list[float], level: float = 0.95) -> Optional[tuple[float, float]]:
    """Paired t-interval of the mean difference; None with fewer than 2 pairs."""
    n = len(diffs)
    if n < 2:
        return None
    from scipy.stats import t

    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
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
