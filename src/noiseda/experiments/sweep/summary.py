"""The statistics of a sweep: per-variant means over seeds and paired differences.

`summarize` gives, per variant, test set, weights and metric, the mean and standard deviation
over seeds of the per-run mean score, and the paired difference to the reference variant with
two 95% confidence intervals:

- ``t``: a paired t-interval over seeds, d_s = score(variant, s) - score(reference, s); with 3
  seeds its t quantile is 4.30, so it is wide, and it is the one the verdicts use;
- ``bootstrap``: percentile interval of a two-level bootstrap that resamples seeds and, within
  them, images (the same image draw for both variants), 2000 resamples, fixed seed. With few
  seeds it is narrower than the t-interval and optimistic; it is reported beside it.

With an oracle variant, it adds the share of the oracle's gain that a variant closes.
"""

from __future__ import annotations

from typing import Optional

from noiseda.evaluation.stats import bootstrap_interval, ratio_interval, sample_sd, t_interval
from noiseda.experiments.sweep.scoring import METRICS, WEIGHTS, _mean
from noiseda.experiments.sweep.spec import Sweep


def summarize(results: dict[tuple[str, int], dict], sweep: Sweep) -> dict:
    """Per variant x test set x weights x metric: mean and sd over seeds; the paired difference
    to the reference with its t and bootstrap intervals."""
    table: dict = {}
    ref = sweep.reference
    for variant in sweep.variants:
        seeds = sorted(s for (v, s) in results if v == variant)
        if not seeds:
            continue
        table[variant] = {}
        for test in sweep.test_sets:
            table[variant][test] = {}
            for weights in WEIGHTS:
                entry = {}
                for metric in METRICS:
                    per_seed = {s: results[(variant, s)]["scores"][weights][test] for s in seeds}
                    means = [_mean(per_seed[s], metric) for s in seeds]
                    e = {"mean": sum(means) / len(means), "sd": sample_sd(means), "seeds": seeds, "per_seed": means}
                    paired = [s for s in seeds if (ref, s) in results] if variant != ref else []
                    if paired:
                        rows = [[a[metric] - b[metric] for a, b in
                                 zip(per_seed[s], results[(ref, s)]["scores"][weights][test])] for s in paired]
                        diffs = [sum(r) / len(r) for r in rows]
                        t_ci = t_interval(diffs)
                        e["diff"] = {"reference": ref, "seeds": paired, "mean": sum(diffs) / len(diffs),
                                     "per_seed": diffs, "ci95_t": t_ci, "ci95_bootstrap": bootstrap_interval(rows),
                                     "verdict": _verdict(t_ci)}
                        gap = _gap_closed(results, sweep, variant, test, weights, metric, paired)
                        if gap is not None:
                            e["gap_closed"] = gap
                    entry[metric] = e
                table[variant][test][weights] = entry
    any_run = next(iter(results.values()))
    inputs = {t: {m: _mean(rows, m) for m in METRICS} for t, rows in any_run["input"].items()}
    return {"reference": ref, "test_sets": sweep.test_sets, "input": inputs, "table": table,
            "ci_method": {"ci95_t": "paired t-interval over seeds of the per-seed mean difference",
                          "ci95_bootstrap": "percentile, 2000 resamples of seeds then images (paired)"}}


def _gap_closed(results, sweep: Sweep, variant: str, test: str, weights: str, metric: str,
                seeds: list[int]) -> Optional[dict]:
    """(variant - reference) / (oracle - reference) over the seeds all three share, with the
    ratio's delta-method t-interval; None without an oracle (or for the oracle itself)."""
    oracle, ref = sweep.oracle, sweep.reference
    if not oracle or variant == oracle or test not in sweep.gap_sets():
        return None
    seeds = [s for s in seeds if (oracle, s) in results]
    if not seeds:
        return None

    def mean(v, s):
        return _mean(results[(v, s)]["scores"][weights][test], metric)

    gains = [mean(variant, s) - mean(ref, s) for s in seeds]
    room = [mean(oracle, s) - mean(ref, s) for s in seeds]
    ratio, ci = ratio_interval(gains, room)
    return {"oracle": oracle, "seeds": seeds, "gap": sum(room) / len(room), "mean": ratio, "ci95_t": ci}


def _verdict(ci: Optional[tuple[float, float]]) -> str:
    if ci is None:
        return "one seed: no interval"
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "no clear difference"
