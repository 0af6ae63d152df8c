"""The offline demo and the helper commands: demo, prepare, simulate, nets, methods, cache and config."""

from __future__ import annotations

from noiseda.cli.common import THREADS_HELP, _packaged, _threads, raise_error


def cmd_demo(args) -> int:
    from noiseda.demo import run_demo

    run_demo(args.out, steps=args.steps, progress=not args.no_progress, threads=args.threads or 0)
    return 0


def cmd_prepare(args) -> int:
    from noiseda.data.files import list_images, load_pairs
    from noiseda.data.prepare import prepare

    if bool(args.input) == bool(args.pairs):
        raise_error("prepare needs either --input (single images) or --pairs (aligned pairs)")
    sources = load_pairs(args.pairs, "--pairs") if args.pairs else [(p, None) for p in list_images(args.input, "--input")]
    m = prepare(sources, args.out, args.size, args.stride, args.min_std, args.workers, not args.no_progress)
    print(f"{m['patches']} patches from {m['sources']} images in {args.out} ({m['skipped_flat']} flat patches skipped)")
    return 0


def cmd_simulate(args) -> int:
    from noiseda.data.simulate import make_split

    s = make_split(args.task, args.clean, args.out, args.seed, real_degradation=args.real_degradation,
                   sigma_range=args.sigma_range)
    print(f"{args.task} split in {args.out}: {len(s['train'])} train-clean ({s['synthetic']} in training), "
          f"{len(s['real'])} real ({s['real_like']}), {len(s['test'])} test pairs")
    return 0


def cmd_methods(args) -> int:
    """What each registered method declares (its file under noiseda/methods)."""
    import json

    from noiseda.methods import METHODS
    from noiseda.methods.base import describe

    names = args.name or METHODS.names()
    described = [describe(METHODS.get(n).name) for n in names]  # an unknown name: one line with suggestions
    if args.json:
        print(json.dumps(described, indent=1))
        return 0
    for d in described:
        print(f"{d['name']}: {d['summary']}")
        print(f"  reads: {', '.join(d['streams'])}; lambda: {d['lambda'] or 'not used'}")
        if d["lambda_defaults"]:
            s = d["lambda_defaults"]
            ramp = {None: "the whole run", 0: "300 passes over the synthetic set"}.get(s["ramp_steps"], f"{s['ramp_steps']} steps")
            schedule = "constant from step 1" if s["ramp_steps"] == 1 else f"slope {s['slope']:g}, ramp over {ramp}"
            print(f"  lambda unless set: weight {s['weight']:g}, {schedule}")
        options = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in d["options"].items())
        print(f"  options (method.options.{d['name']}.KEY): {options or 'none'}")
        row = d["table"]
        compared = "not in compare-methods" if row is None else (
            f"compare-methods: {row['space']} space, trained on {row['trained_on']}"
            + ("" if row["default"] else " (only when named)")
            + (f"; there with {' '.join(row['setup'])}" if row["setup"] else ""))
        print(f"  {compared}")
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
    from noiseda.data.store import clear_decoded_cache, decoded_cache_dir, decoded_cache_usage

    folder = decoded_cache_dir()
    if args.clear:
        files, size = clear_decoded_cache()
        print(f"removed {files} files ({size / 2**30:.2f} GiB) from {folder}")
    else:
        files, size = decoded_cache_usage()
        print(f"{folder}: {files} decoded images, {size / 2**30:.2f} GiB (data.cache=disk; --clear deletes them)")
    return 0


def add_parsers(sub) -> None:
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
    sm.add_argument("--real-degradation", metavar="SPEC", help="degrade the real and test images with this registered "
                    "degradation instead of the task's simulator (e.g. awgn)")
    sm.add_argument("--sigma-range", type=float, nargs=2, metavar=("LO", "HI"),
                    help="with --real-degradation awgn: sigma in /255 units, e.g. 25 25")
    sm.set_defaults(fn=cmd_simulate)

    n = sub.add_parser("nets", help="list restoration nets with parameters and MACs")
    n.add_argument("--size", type=int, nargs="+", help="input sizes for the MAC count (default: 128 256)")
    n.set_defaults(fn=cmd_nets)

    me = sub.add_parser("methods", help="list training methods: what each reads, what lambda means for it, its options")
    me.add_argument("name", nargs="*", help="only these methods")
    me.add_argument("--json", action="store_true", help="as JSON")
    me.set_defaults(fn=cmd_methods)

    ca = sub.add_parser("cache", help="where the decoded training images of data.cache=disk are, and their size")
    ca.add_argument("--clear", action="store_true", help="delete them (training decodes again what it needs)")
    ca.set_defaults(fn=cmd_cache)

    c = sub.add_parser("config", help="print a resolved config (every key, with its value)")
    c.add_argument("-c", "--config", default=None,
                   help=f"YAML file or packaged config name ({_packaged()}); default: the built-in defaults")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value, e.g. train.steps=500")
    c.set_defaults(fn=cmd_config)
