"""Collect a finished `noiseda sweep` folder into one JSON to commit: the summary (means, sds,
paired differences with their intervals), every run's curve (raw and EMA PSNR per test set),
training speed per run, and the machine. Copies the sweep's curves.png beside the JSON. Works
on `noiseda ablate` and `noiseda compare-methods` folders too (their table is kept as well).

    python benchmarks/collect_sweep.py runs/sweep-denoise-cpu --out benchmarks/results/sweep-denoise-cpu.json

For runs trained on another machine, `--machine FILE` takes its record from a JSON file
(this machine's would be wrong), and `--notes` says how the runs were made.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from quality import machine  # the same machine record as the other benchmarks

from noiseda.experiments.sweep import read_curves


def run_speed(run: Path) -> dict:
    logs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    rates = sorted(r["train/steps_per_s"] for r in logs if "train/steps_per_s" in r)
    threads = None
    cfg = run / "config.yaml"
    if cfg.is_file():
        import yaml

        threads = yaml.safe_load(cfg.read_text())["train"]["threads"]
    return {"median_steps_per_s": rates[len(rates) // 2] if rates else None, "torch_threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir")
    ap.add_argument("--out", required=True, help="JSON result path (curves go beside it as .png)")
    ap.add_argument("--machine", help="JSON file with the record of the machine that trained the runs")
    ap.add_argument("--notes", help="how the runs were made (kept in the JSON)")
    args = ap.parse_args()
    root = Path(args.sweep_dir)
    summary = json.loads((root / "summary.json").read_text())
    runs = {}
    for variant in summary["sweep"]["variants"]:
        for seed in summary["sweep"]["seeds"]:
            run = root / "runs" / variant / f"seed-{seed}"
            if (run / "scores.json").is_file():
                runs[f"{variant}/seed-{seed}"] = {"curves": read_curves(root, variant, seed), **run_speed(run)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(Path(args.machine).read_text()) if args.machine else machine()
    result = {"benchmark": "sweep", "notes": args.notes, "machine": record, "summary": summary, "runs": runs}
    for table in ("ablation.md", "methods.md"):
        if (root / table).is_file():
            result["table_markdown"] = (root / table).read_text()
    out.write_text(json.dumps(result, indent=1))
    if (root / "curves.png").is_file():
        shutil.copyfile(root / "curves.png", out.with_suffix(".png"))
    print(f"written {out}")


if __name__ == "__main__":
    main()
