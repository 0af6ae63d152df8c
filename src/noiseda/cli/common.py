"""Argument helpers and constants the command modules share: --device, --threads, --tile and
--precision values, the error a bad argument raises, and the names that help texts list."""

from __future__ import annotations

import argparse


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


def per_image_arguments(p) -> None:
    """--per-image-set, for the commands that take --per-image NAME in place of --weights."""
    p.add_argument("--per-image-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the --per-image restorer, e.g. kernel_size=41 or iterations=500 "
                        "(docs/methods.md lists them)")


PER_IMAGE_ENTRY = "per-image:"  # --compare NAME=per-image:selfdeblur: a per-image restorer beside trained ones


def _per_image_options(items: list[str]) -> list[tuple]:
    import yaml

    options = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise_error(f"--per-image-set {item!r}: expected KEY=VALUE")
        try:
            options.append((key, yaml.safe_load(raw)))
        except yaml.YAMLError:
            raise_error(f"--per-image-set {item!r}: the value is not a number, word or list")
    return options


def restorer_source(args):
    """What to restore with: the --weights path, or the per-image restorer --per-image asks for."""
    from noiseda.inference.per_image import PerImage

    if not getattr(args, "per_image", None):
        if args.per_image_set:
            raise_error("--per-image-set goes with --per-image")
        return args.weights
    return PerImage(args.per_image, tuple(_per_image_options(args.per_image_set)),
                    progress=not getattr(args, "no_progress", True))


def compared_sources(named: dict[str, str], per_image_set: list[str]) -> dict:
    """--compare's restorers: a WEIGHTS of the form per-image:NAME becomes that per-image
    restorer, given each --per-image-set option it has (selfdeblur and vdip share most of
    theirs); an option that none of them has is refused."""
    from noiseda.inference.per_image import PER_IMAGE, PerImage, option_names

    options = _per_image_options(per_image_set)
    kinds = {k: v[len(PER_IMAGE_ENTRY):] for k, v in named.items() if v.startswith(PER_IMAGE_ENTRY)}
    if options and not kinds:
        raise_error(f"--per-image-set goes with --per-image, or with --compare NAME={PER_IMAGE_ENTRY}METHOD entries")
    for kind in kinds.values():
        if kind not in PER_IMAGE:
            raise_error(f"--compare {PER_IMAGE_ENTRY}{kind}: unknown; choose from {', '.join(sorted(PER_IMAGE))}")
    for key, _ in options:
        if not any(key in option_names(kind) for kind in kinds.values()):
            raise_error(f"--per-image-set {key}: none of {', '.join(sorted(set(kinds.values())))} has that option")
    return {name: PerImage(kinds[name], tuple((k, v) for k, v in options if k in option_names(kinds[name])))
            if name in kinds else weights for name, weights in named.items()}


def raise_error(msg: str):
    from noiseda.errors import NoisedaError

    raise NoisedaError(msg)


def _default_methods() -> list[str]:
    from noiseda.experiments.compare_methods import default_methods

    return default_methods("denoise")


def _packaged() -> str:
    from noiseda.config import packaged_configs

    return ", ".join(packaged_configs())
