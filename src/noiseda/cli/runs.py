"""Commands that write a run's or a restorer's folder: report (a run's report.md) and import-official."""

from __future__ import annotations

from pathlib import Path

from noiseda.cli.common import _device, raise_error


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


def add_parsers(sub) -> None:
    rp = sub.add_parser("report", help="(re)write a run's report.md: loss curves, validation, samples")
    rp.add_argument("run", help="run folder")
    rp.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    rp.set_defaults(fn=cmd_report)

    io_ = sub.add_parser("import-official", help="convert the authors' released checkpoint into a restorer folder")
    io_.add_argument("checkpoint", help="their .pth file (the _ema variant too)")
    io_.add_argument("--task", required=True, help="denoise ([0,1] inputs), derain or deblur ([-1,1] inputs)")
    io_.add_argument("--out", required=True, help="output folder (new or empty)")
    io_.set_defaults(fn=cmd_import_official)
