"""Paired differences between two variants of one collected sweep at different steps of their
curves: for arms whose restorer trained for different numbers of steps. In the adaptation sweep
noise-da's restorer is frozen for its 500 warm-up steps, so at step 2000 it has trained 1500
steps, while continued vanilla has trained 2000 and keeps drifting from the shared start: the
fair reading pairs noise-da at 2000 with vanilla at 1500 (their EMAs have had as many updates).

    python benchmarks/equal_steps.py benchmarks/results/sweep-adapt-cpu.json \\
        --variant noise-da 2000 --reference vanilla 1500 --out benchmarks/results/adapt-equal-steps-cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noiseda.evaluation.stats import t_interval


def point(runs: dict, variant: str, seed: int, curve: str, step: int) -> float:
    return dict(map(tuple, runs[f"{variant}/seed-{seed}"]["curves"][curve]))[step]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_json")
    ap.add_argument("--variant", nargs=2, metavar=("NAME", "STEP"), required=True)
    ap.add_argument("--reference", nargs=2, metavar=("NAME", "STEP"), required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    result = json.loads(Path(args.sweep_json).read_text())
    runs, seeds = result["runs"], result["summary"]["sweep"]["seeds"]
    (name, step), (ref, ref_step) = (args.variant[0], int(args.variant[1])), (args.reference[0], int(args.reference[1]))
    rows = {}
    for curve in runs[f"{ref}/seed-{seeds[0]}"]["curves"]:
        diffs = [point(runs, name, s, curve, step) - point(runs, ref, s, curve, ref_step) for s in seeds]
        rows[curve] = {"diff_per_seed": diffs, "mean_diff": sum(diffs) / len(diffs), "ci95_t": t_interval(diffs)}
        lo, hi = rows[curve]["ci95_t"]
        print(f"{curve}: {name}@{step} - {ref}@{ref_step}: {rows[curve]['mean_diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] dB")
    out = {"benchmark": "equal-steps", "sweep": args.sweep_json, "variant": [name, step],
           "reference": [ref, ref_step], "seeds": seeds, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
