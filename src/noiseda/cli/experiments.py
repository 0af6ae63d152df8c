"""Commands that train and score many runs: sweep, ablate and compare-methods."""

from __future__ import annotations

from pathlib import Path

from noiseda.cli.common import THREADS_HELP, _default_methods, _packaged, _threads, raise_error


def cmd_sweep(args) -> int:
    from noiseda.experiments.sweep import load_sweep, run_sweep

    if args.jobs < 1:
        raise_error(f"--jobs: expected >= 1, got {args.jobs}")
    sweep = load_sweep(args.sweep, args.set or [], args.seeds)
    summary = run_sweep(sweep, args.out, jobs=args.jobs, threads=args.threads or 0, progress=not args.no_progress,
                        summary_only=args.summary_only)
    print(summary["markdown"])
    print(f"{_written(summary)} and every run under {Path(args.out) / 'runs'}")
    return 0


def _sweep_command_args(args) -> dict[str, str]:
    """Checks shared by ablate and compare-methods; the test sets as name -> pairs."""
    if args.jobs < 1:
        raise_error(f"--jobs: expected >= 1, got {args.jobs}")
    if args.eval_every < 0:
        raise_error(f"--eval-every: expected >= 0, got {args.eval_every}")
    tests: dict[str, str] = {}
    for item in args.test_set:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or name in tests:
            raise_error(f"--test-set {item!r}: expected NAME=PAIRS with a new name")
        tests[name] = path
    return tests


def _written(summary: dict) -> str:
    figure = "curves.png" if summary["figure"] else "(no curves.png: matplotlib is missing; reinstall noiseda)"
    return f"summary.md, summary.json, {figure}"


def _run_table_sweep(args, sweep, run, filename: str) -> int:
    """ablate and compare-methods: run the sweep, print its table and what was written."""
    summary = run(sweep, args.out, jobs=args.jobs, progress=not args.no_progress, summary_only=args.summary_only)
    print(summary["table_markdown"])
    print(f"{filename}, {_written(summary)} and every run under {Path(args.out) / 'runs'}")
    return 0


def cmd_ablate(args) -> int:
    from noiseda.experiments.ablate import ablation_sweep, run_ablation

    tests = _sweep_command_args(args)
    sweep = ablation_sweep(args.config, args.set or [], tests, args.seeds, args.variants, args.eval_every)
    return _run_table_sweep(args, sweep, run_ablation, "ablation.md")


def cmd_compare_methods(args) -> int:
    from noiseda.experiments.compare_methods import methods_sweep, run_methods

    tests = _sweep_command_args(args)
    if args.adversarial_weight is not None and not args.adversarial_weight > 0:
        raise_error(f"--adversarial-weight: expected > 0, got {args.adversarial_weight}")
    sweep = methods_sweep(args.config, args.set or [], tests, args.seeds, args.methods, args.oracle_pairs,
                          args.eval_every, args.adversarial_weight)
    return _run_table_sweep(args, sweep, run_methods, "methods.md")


def add_parsers(sub) -> None:
    sw = sub.add_parser("sweep", help="variants x seeds, trained and scored alike; mean +- sd and paired 95%% CIs")
    sw.add_argument("sweep", help="sweep file (YAML): config, set, seeds, reference, eval_every, test_sets, variants")
    sw.add_argument("--out", required=True, help="sweep folder; a rerun skips finished runs and resumes the others")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="a further override for every run")
    sw.add_argument("--seeds", type=int, nargs="+", help="replace the file's seeds")
    sw.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process with "
                                                        "cores/jobs torch threads (default 1)")
    sw.add_argument("--summary-only", action="store_true", help="summarise the finished runs; train nothing")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--threads", type=_threads, help=THREADS_HELP)
    sw.set_defaults(fn=cmd_sweep)

    def sweep_command(name: str, help: str):
        p = sub.add_parser(name, help=help)
        p.add_argument("-c", "--config", help=f"base training config: YAML file or packaged name ({_packaged()})")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="an override for every run (data, steps...)")
        p.add_argument("--test-set", action="append", required=True, metavar="NAME=PAIRS",
                       help="a folder of noisy/clean pairs (or ADAPTER:PATH) to score every run on; repeatable")
        p.add_argument("--out", required=True, help="sweep folder; a rerun skips finished runs and resumes the others")
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per variant (default 0 1 2)")
        p.add_argument("--eval-every", type=int, default=0, help="validation curves every K steps (0: at the end only)")
        p.add_argument("--jobs", type=int, default=1, help="runs at once, each with cores/jobs torch threads")
        p.add_argument("--summary-only", action="store_true", help="summarise the finished runs; train nothing")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        return p

    ab = sweep_command("ablate", "the paper's ablations (Table 4) as a sweep: paired 95%% CIs against the full "
                                 "method, the paper's numbers beside ours")
    ab.add_argument("--variants", nargs="+", metavar="NAME",
                    help="a subset of: full no-rs no-cs no-cs-no-rs t-1-100 t-900-999 only-synthetic only-real "
                         "vanilla (default: all; full is always run)")
    ab.set_defaults(fn=cmd_ablate)

    cm = sweep_command("compare-methods", "the paper's Table 1 as a sweep: every method on the same restorer, "
                                          "data, steps and seeds; paired 95%% CIs against vanilla")
    cm.add_argument("--methods", nargs="+", metavar="NAME",
                    help=f"methods to compare (default: {' '.join(_default_methods())}, ne2ne and c2n for denoising "
                         "only; vanilla is always run)")
    cm.add_argument("--oracle-pairs", metavar="PAIRS",
                    help="real noisy/clean training pairs: adds the oracle (supervised on them) as the upper bound")
    cm.add_argument("--adversarial-weight", type=float, metavar="W",
                    help="lambda's weight for dann, dsn, pixelda and cycada, each on its own schedule (default: "
                         "each method's own: DANN and CyCADA 1, DSN 0.25, PixelDA 0.01)")
    cm.set_defaults(fn=cmd_compare_methods)
