"""Readings of noise-da: probe-conditions (the paper's Fig. 1(a)) and probe-gradient."""

from __future__ import annotations

from noiseda.cli.common import _packaged, raise_error


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


def add_parsers(sub) -> None:
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
