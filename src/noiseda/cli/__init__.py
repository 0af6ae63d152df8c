"""Command line: noiseda train | sweep | ablate | compare-methods | probe-conditions | evaluate | restore | report | prepare | simulate | import-official | demo | nets | cache | config."""

from __future__ import annotations

import argparse
import os
import sys

# Idle OpenMP threads sleep instead of spinning. On 2 cores beside one busy process, torch's
# default threads trained at 0.09x their idle speed with spinning threads and 0.61x with
# passive ones, which cost 20% when the machine is idle (benchmarks/results/threads-cpu.json).
# It must be set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def build_parser() -> argparse.ArgumentParser:
    from noiseda import __version__
    from noiseda.cli import experiments, probes, restoring, runs, tools, training

    p = argparse.ArgumentParser(prog="noiseda", description=__doc__)
    p.add_argument("--version", action="version", version=f"noiseda {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for commands in (training, restoring, experiments, probes, runs, tools):  # the order --help lists them in
        commands.add_parsers(sub)
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
        several = args.command in ("sweep", "ablate", "compare-methods")  # commands that train many runs
        print("noiseda: interrupted" + (": finished runs are kept; run the same command again to continue (each "
                                        "unfinished run resumes from its last checkpoint)" if several else ""),
              file=sys.stderr)
        return 130
