"""`noiseda ablate` and `noiseda compare-methods` in one sweep, so the runs they share (vanilla,
and the full method = compare-methods' noise-da) train once and every run can share one machine's
`--jobs`; then both tables, each from its own command's summary (`--summary-only` on folders
that link to the shared runs, so each run's config is checked against that command's).

    python benchmarks/ablate_and_compare.py -c benchmarks/configs/denoise-cpu.yaml \
        --set data.clean=runs/split-denoise/train-clean --set data.real=runs/split-denoise/real \
        --test-set sim=runs/split-denoise/test --test-set polyu=../shared/data/denoise/real-val/polyu \
        --eval-every 500 --out runs/tables-denoise --jobs 2

A rerun skips finished runs (stop it at any time); `--summary-only` writes the tables from
what has finished. Writes OUT/ablation/ablation.md, OUT/methods/methods.md (and their
summary.json, curves.png) and OUT/machine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from quality import machine  # the same machine record as the other benchmarks

from noiseda.experiments.ablate import ablation_sweep, run_ablation
from noiseda.experiments.compare_methods import methods_sweep, run_methods
from noiseda.errors import NoisedaError
from noiseda.experiments.sweep import Sweep, run_sweep

# compare-methods' name for a run that ablate calls by another name (same resolved config).
SHARED = {"noise-da": "full"}


def union(ablation: Sweep, methods: Sweep) -> Sweep:
    variants = dict(ablation.variants)
    for name, overrides in methods.variants.items():
        name = SHARED.get(name, name)
        if name in variants and variants[name] != overrides:
            raise NoisedaError(f"variant {name!r} differs between ablate and compare-methods")
        variants[name] = overrides
    return Sweep(config=ablation.config, overrides=ablation.overrides, seeds=ablation.seeds, reference="full",
                 eval_every=ablation.eval_every, test_sets=ablation.test_sets, variants=variants)


def link_runs(sweep: Sweep, shared: Path, out: Path) -> None:
    """out/runs/<variant> -> the shared run folder (relative, so the tree can be moved)."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for name in sweep.variants:
        link = out / "runs" / name
        if not link.is_symlink():
            link.symlink_to(Path("..") / ".." / shared.name / "runs" / SHARED.get(name, name))


def machine_and_commit() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    return {**machine(), "cpu_count": os.cpu_count(), "commit": commit}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--test-set", action="append", required=True, metavar="NAME=PAIRS")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", help="ablate's --variants (default: all)")
    ap.add_argument("--methods", nargs="+", help="compare-methods' --methods (default: its own)")
    ap.add_argument("--adversarial-weight", type=float, default=1.0, help="compare-methods' --adversarial-weight")
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args()

    tests = dict(item.split("=", 1) for item in args.test_set)
    ablation = ablation_sweep(args.config, args.set, tests, args.seeds, args.variants, args.eval_every)
    methods = methods_sweep(args.config, args.set, tests, args.seeds, args.methods, None, args.eval_every,
                            args.adversarial_weight)
    out = Path(args.out)
    shared = out / "shared"
    both = union(ablation, methods)
    tic = time.time()
    if not args.summary_only:
        try:
            run_sweep(both, shared, jobs=args.jobs, progress=args.jobs == 1)
        except NoisedaError as exc:  # failed runs are named; the tables still show the finished ones
            print(f"sweep: {exc}", file=sys.stderr)
        (out / "machine.json").write_text(json.dumps({**machine_and_commit(), "seconds": time.time() - tic,
                                                      "jobs": args.jobs}, indent=1))
    for sweep, run, name in ((ablation, run_ablation, "ablation"), (methods, run_methods, "methods")):
        link_runs(sweep, shared, out / name)
        summary = run(sweep, out / name, summary_only=True)
        print(summary["table_markdown"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NoisedaError as exc:
        sys.exit(f"noiseda: {exc}")
