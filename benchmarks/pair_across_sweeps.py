"""Paired differences between variants of two collected sweeps (collect_sweep.py JSONs) whose
runs share seeds and test sets: for a variant that one sweep would only have trained again
with the same config (e.g. the wide-range vanilla and the oracle of the headroom sweep, next to
the smoothing sweep's narrow-range runs). Checks that both sweeps scored the same test images
(the noisy inputs' scores must agree) before pairing by seed.

    python benchmarks/pair_across_sweeps.py --reference benchmarks/results/sweep-smoothing-cpu.json vanilla-s15 \\
        --variant benchmarks/results/sweep-headroom-cpu.json vanilla --as vanilla-s75 \\
        --variant benchmarks/results/sweep-headroom-cpu.json oracle-sim \\
        --out benchmarks/results/smoothing-cross-pairs-cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noiseda.evaluation.stats import t_interval


def load(path: str) -> dict:
    return json.loads(Path(path).read_text())["summary"]


def per_seed(summary: dict, variant: str, test: str, weights: str) -> dict[int, float]:
    cell = summary["table"][variant][test][weights]["psnr"]
    return dict(zip(cell["seeds"], cell["per_seed"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", nargs=2, metavar=("SWEEP_JSON", "VARIANT"), required=True)
    ap.add_argument("--variant", nargs=2, action="append", metavar=("SWEEP_JSON", "VARIANT"), required=True)
    ap.add_argument("--as", dest="names", action="append", default=[],
                    help="a name for the matching --variant, in order (default: its own)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ref_summary, ref = load(args.reference[0]), args.reference[1]
    rows = {}
    for k, (path, variant) in enumerate(args.variant):
        summary = load(path)
        name = args.names[k] if k < len(args.names) else variant
        rows[name] = {"from": f"{path}: {variant}", "tests": {}}
        for test, inputs in ref_summary["input"].items():
            if test not in summary["input"]:
                continue
            if abs(summary["input"][test]["psnr"] - inputs["psnr"]) > 1e-6:
                raise SystemExit(f"{test}: the two sweeps scored different images (input PSNR "
                                 f"{summary['input'][test]['psnr']:.4f} vs {inputs['psnr']:.4f}); not paired")
            for weights in ("ema", "raw"):
                a, b = per_seed(summary, variant, test, weights), per_seed(ref_summary, ref, test, weights)
                seeds = sorted(set(a) & set(b))
                diffs = [a[s] - b[s] for s in seeds]
                rows[name]["tests"].setdefault(test, {})[weights] = {
                    "seeds": seeds, "psnr": [a[s] for s in seeds], "diff_per_seed": diffs,
                    "mean_diff": sum(diffs) / len(diffs) if diffs else None, "ci95_t": t_interval(diffs)}
    result = {"benchmark": "pair-across-sweeps", "reference": f"{args.reference[0]}: {ref}", "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for name, row in rows.items():
        for test, cells in row["tests"].items():
            c = cells["ema"]
            ci = c["ci95_t"]
            print(f"{name} - {ref} on {test} (EMA): {c['mean_diff']:+.2f} dB"
                  + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))


if __name__ == "__main__":
    main()
