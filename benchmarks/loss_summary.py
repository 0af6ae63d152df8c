"""What did each run's training losses do?  Per run folder: for every logged loss and the
gradient norm, the mean over the logged steps after ``--after``, the maximum over the whole run
and the step where it occurred. Used to diagnose recipes that fall below the noisy input
(docs/results.md): a spike in one loss, a game that one side wins. With ``--window A B`` it also
keeps every logged row of steps A..B (log every step to see which loss leaves its range first).

    python benchmarks/loss_summary.py runs/sweep-recipes-v3/runs/dsn/seed-* --after 1000 --out dsn-losses.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noiseda.evaluation.report import read_metrics


def summarise(run: Path, after: int, window: list[int] | None = None) -> dict:
    logged = [r for r in read_metrics(run) if "train/grad_norm" in r]
    keys = sorted({k for r in logged for k in r if k.startswith("loss/")}) + ["train/grad_norm"]
    out = {}
    for key in keys:
        points = [(r["step"], r[key]) for r in logged if key in r]
        late = [v for s, v in points if s > after]
        step, peak = max(points, key=lambda p: p[1])
        out[key] = {"late_mean": sum(late) / len(late) if late else None, "max": peak, "max_step": step}
    if window:
        out["window"] = [{k: r[k] for k in ["step", *keys] if k in r} for r in logged
                         if window[0] <= r["step"] <= window[1]]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl)")
    p.add_argument("--after", type=int, default=1000, help="late means over the logged steps after this one")
    p.add_argument("--out", required=True, help="JSON to write")
    p.add_argument("--notes", default="", help="how the runs were made")
    p.add_argument("--window", type=int, nargs=2, metavar=("A", "B"), help="also keep every logged row of steps A..B")
    args = p.parse_args()
    result = {"notes": args.notes, "after": args.after,
              "runs": {str(Path(r)): summarise(Path(r), args.after, args.window) for r in args.runs}}
    for run, keys in result["runs"].items():
        print(run, {k.split("/")[1]: (round(v["late_mean"], 3) if v["late_mean"] is not None else None, round(v["max"], 1))
                    for k, v in keys.items() if k != "window"})
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
