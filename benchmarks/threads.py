"""Which torch thread count loses least when the machine is shared (issue 25, item 1).

Trains the demo's noise-da preset for a few steps, once per candidate thread setting, alone
and beside a busy process (one Python loop that keeps a core busy, like another job), and
records the median steps/s over the log intervals after the first (start-up). Candidates:
torch's default (one thread per core), one thread, half the cores, and the default under
OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning).

    python benchmarks/threads.py --out benchmarks/results/threads-cpu.json

Run it on an otherwise idle machine: every number is relative to the same run's "alone".
Since noiseda's command line sets OMP_WAIT_POLICY=PASSIVE unless it is set, the "default" row
measures that; pass OMP_WAIT_POLICY=ACTIVE in the environment to measure spinning threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from quality import machine

BUSY = "while True: pass"


def candidates() -> dict[str, tuple[int, dict]]:
    cores = len(os.sched_getaffinity(0))
    return {"default": (0, {}), "1": (1, {}), f"{max(1, cores // 2)} (half)": (max(1, cores // 2), {}),
            "default, OMP_WAIT_POLICY=PASSIVE": (0, {"OMP_WAIT_POLICY": "PASSIVE"})}


def train_rate(data: Path, out: Path, steps: int, threads: int, env: dict) -> float:
    argv = [sys.executable, "-m", "noiseda", "train", "-c", "demo", "--out", str(out), "--no-progress",
            "--set", f"data.clean={data / 'clean'}", "--set", f"data.real={data / 'real'}",
            "--set", f"train.steps={steps}", "--set", "train.log_every=5", "--set", "train.val_every=100000",
            "--set", "train.checkpoint_every=100000", "--set", "data.val_pairs=null",
            "--set", f"train.threads={threads}", "--set", "train.monitor=false"]
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, **env})
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["train/steps_per_s"] for r in logs if "train/steps_per_s" in r][1:]  # not the start-up interval
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    from noiseda.demo import make_demo_data

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_demo_data(data)
        for name, (threads, env) in candidates().items():
            row = {"candidate": name}
            for condition in ("alone", "beside a busy process"):
                busy = subprocess.Popen([sys.executable, "-c", BUSY]) if condition != "alone" else None
                try:
                    run = Path(tmp) / f"run-{len(rows)}-{condition[:5]}"
                    row[condition] = train_rate(data, run, args.steps, threads, env)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
            row["shared / alone"] = row["beside a busy process"] / row["alone"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    best_alone = max(r["alone"] for r in rows)
    for r in rows:
        r["alone / best alone"] = r["alone"] / best_alone
    result = {"benchmark": "threads", "machine": machine(), "steps": args.steps, "unit": "median steps/s",
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
