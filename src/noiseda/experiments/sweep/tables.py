"""The Markdown tables of a sweep summary (``summary.md``), one per weights and metric.

Kept apart from the statistics so that the numbers (`summary.summarize`) and their layout
change independently; `gap_cell` is shared with the ablation tables.
"""

from __future__ import annotations

from noiseda.experiments.sweep.scoring import WEIGHTS
from noiseda.experiments.sweep.spec import Sweep


def _ci(ci, digits: int) -> str:
    return "-" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def summary_markdown(summary: dict, sweep: Sweep, metric: str = "psnr") -> str:
    digits = 2 if metric == "psnr" else 4
    lines = []
    for weights in WEIGHTS:
        head = ["variant", "seeds"]
        for test in sweep.test_sets:
            head += [f"{test} {metric.upper()}", f"{test} diff [95% CI t] (bootstrap)"]
            if test in sweep.gap_sets():
                head.append(f"{test} gap closed [95% CI]")
        lines += [f"**{weights.upper()} weights**, {metric.upper()}: mean +- sd over seeds; paired difference "
                  f"to `{summary['reference']}`", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cells = ["noisy input", "-"]
        for test in sweep.test_sets:
            cells += [f"{summary['input'][test][metric]:.{digits}f}", ""] + ([""] if test in sweep.gap_sets() else [])
        lines.append("| " + " | ".join(cells) + " |")
        for variant, per_test in summary["table"].items():
            first = per_test[next(iter(per_test))][weights][metric]
            cells = [variant, str(len(first["seeds"]))]
            for test in sweep.test_sets:
                e = per_test[test][weights][metric]
                sd = "" if e["sd"] is None else f" +- {e['sd']:.{digits}f}"
                cells.append(f"{e['mean']:.{digits}f}{sd}")
                d = e.get("diff")
                if d is None:
                    cells.append("reference" if variant == summary["reference"] else "-")
                else:
                    cells.append(f"{d['mean']:+.{digits}f} {_ci(d['ci95_t'], digits)} ({_ci(d['ci95_bootstrap'], digits)[1:-1]})"
                                 if d["ci95_t"] else f"{d['mean']:+.{digits}f}")
                if test in sweep.gap_sets():
                    cells.append(gap_cell(e, variant, summary["reference"], sweep.oracle))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def gap_cell(entry: dict, variant: str, reference: str, oracle: str) -> str:
    """The "gap closed" table cell: a share of the oracle's gain over the reference."""
    if variant == reference:
        return "0 (reference)"
    if variant == oracle:
        return "1 (oracle)"
    g = entry.get("gap_closed")
    if g is None:
        return "-"
    if g["mean"] is None:
        return "no gap (oracle not above the reference)"
    return f"{g['mean']:+.2f}" + ("" if g["ci95_t"] is None else f" {_ci(g['ci95_t'], 2)}")
