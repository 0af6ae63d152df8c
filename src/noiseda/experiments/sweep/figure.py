"""The curves of a sweep: reading each run's logged test-set PSNR, and ``curves.png``.

The figure needs matplotlib, which is optional: without it `curves_figure` draws nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from noiseda.experiments.sweep.scoring import WEIGHTS
from noiseda.experiments.sweep.spec import Sweep, run_dir


def read_curves(out: Path, variant: str, seed: int) -> dict[str, list[tuple[int, float]]]:
    path = run_dir(out, variant, seed) / "metrics.jsonl"
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return curves
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        for k, v in rec.items():
            if k.startswith("sweep/"):
                curves.setdefault(k[len("sweep/"):], []).append((rec["step"], v))
    return curves


def curves_figure(out: Path, sweep: Sweep, summary: dict, path: Path) -> bool:
    """PSNR against step, one column per test set, EMA weights on top and raw below: the mean
    over the seeds of the summary (finished runs only) per variant, with a band from the lowest
    to the highest seed; the noisy input dotted."""
    from noiseda.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return False
    tests = list(sweep.test_sets)
    fig, axes = plt.subplots(2, len(tests), figsize=(4.6 * len(tests), 6.6), squeeze=False, sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, test in enumerate(tests):
        for row, weights in enumerate(WEIGHTS):
            ax = axes[row][col]
            for vi, (variant, per_test) in enumerate(summary["table"].items()):
                seeds = per_test[test][weights]["psnr"]["seeds"]
                series = [dict(read_curves(out, variant, s).get(f"{test}/{weights}/psnr", [])) for s in seeds]
                series = [s for s in series if s]
                steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
                if not steps:
                    continue
                vals = [[s[k] for s in series] for k in steps]
                color = colors[vi % len(colors)]
                ax.plot(steps, [sum(v) / len(v) for v in vals], color=color, label=f"{variant} ({len(series)} seeds)")
                if len(series) > 1:
                    ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], color=color, alpha=0.12,
                                    linewidth=0)
            ax.axhline(summary["input"][test]["psnr"], color="grey", linestyle=":", label="noisy input")
            ax.set_title(f"{test}, {weights.upper()} weights", fontsize=10)
            ax.set_ylabel("PSNR (dB)")
            ax.grid(alpha=0.3)
            if row == len(WEIGHTS) - 1:
                ax.set_xlabel("step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    save_figure(fig, path, rect=(0, 0.1, 1, 1))
    return True
