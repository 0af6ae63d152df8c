"""The train command."""

from __future__ import annotations

from pathlib import Path

from noiseda.cli.common import THREADS_HELP, _packaged, _threads, raise_error


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


def add_parsers(sub) -> None:
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
