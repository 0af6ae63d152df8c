"""Is each variant of a finished sweep above the degraded input? (issue 27's acceptance bar)

For every variant and test set: the mean PSNR over seeds minus the input's PSNR, with a 95%
t-interval over seeds (the input is the same in every seed, so the interval is that of the
variant's per-seed means), the seeds, and the lowest per-seed value; EMA and raw weights.
Prints a Markdown table and writes JSON.

    python benchmarks/above_input.py runs/sweep-recipes-cpu --out benchmarks/results/recipes-cpu-above-input.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from scipy import stats


def interval(values: list[float]) -> tuple[float, float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def above_input(summary: dict) -> dict:
    out = {}
    for variant, sets in summary["table"].items():
        for name, weights in sets.items():
            base = summary["input"][name]["psnr"]
            for w, metrics in weights.items():
                per_seed = [v - base for v in metrics["psnr"]["per_seed"]]
                mean, lo, hi = interval(per_seed)
                out.setdefault(variant, {}).setdefault(name, {})[w] = {
                    "mean": mean, "ci95_t": [lo, hi], "seeds": metrics["psnr"]["seeds"], "lowest": min(per_seed),
                    "input_psnr": base}
    return out


def markdown(result: dict, weights: str) -> str:
    sets = list(next(iter(result.values())))
    lines = [f"**{weights.upper()} weights**: PSNR minus the input's, dB, mean [95% t-interval over seeds] (lowest seed)",
             "", "| variant | seeds | " + " | ".join(sets) + " |", "|---|---|" + "---|" * len(sets)]
    for variant, by_set in result.items():
        cells = []
        for name in sets:
            r = by_set[name][weights]
            lo, hi = r["ci95_t"]
            ci = "" if math.isnan(lo) else f" [{lo:+.2f}, {hi:+.2f}]"
            cells.append(f"{r['mean']:+.2f}{ci} ({r['lowest']:+.2f})")
        lines.append(f"| {variant} | {len(by_set[sets[0]][weights]['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep", help="a sweep folder with summary.json (noiseda sweep ... --summary-only writes it)")
    p.add_argument("--out", help="JSON to write")
    args = p.parse_args()
    summary = json.loads((Path(args.sweep) / "summary.json").read_text())
    result = above_input(summary)
    for weights in ("ema", "raw"):
        print(markdown(result, weights) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps({"benchmark": "above_input", "sweep": str(args.sweep),
                                              "input": summary["input"], "result": result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
