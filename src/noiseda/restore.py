"""`noiseda restore`: files, folders (mirrored recursively) and globs, one failure never stops the batch."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from noiseda.checkpoint import load_restorer
from noiseda.data.io import Picture, is_image, read_image, write_image
from noiseda.errors import NoisedaError
from noiseda.infer import for_inference, restore_safely


def plan_outputs(inputs: Sequence[str], output: str, suffix: Optional[str] = None) -> list[tuple[Path, Path]]:
    """(input file, output file) for every image; refuses any output that is an input."""
    out_root = Path(output).expanduser()
    jobs: list[tuple[Path, Path]] = []
    for spec in inputs:
        p = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            files = [Path(m) for m in sorted(glob.glob(spec, recursive=True)) if is_image(Path(m))]
            jobs += [(f, out_root / f.name) for f in files]
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and is_image(f) and not f.name.startswith("."))
            jobs += [(f, out_root / f.relative_to(p)) for f in files]
        elif p.is_file():
            jobs.append((p, out_root / p.name))
        else:
            raise NoisedaError(f"input not found: {spec}")
    if not jobs:
        raise NoisedaError(f"no images found in {', '.join(inputs)}")
    if suffix:
        jobs = [(i, o.with_suffix(suffix if suffix.startswith(".") else f".{suffix}")) for i, o in jobs]
    sources = {i.resolve() for i, _ in jobs}
    for _, o in jobs:
        if o.resolve() in sources:
            raise NoisedaError(f"output {o} would overwrite an input image; choose another --output")
    return jobs


def check_output_folder(output: str) -> None:
    """Refuse, before any work, an --output that cannot become a writable folder: a file, a
    path through a file, or a place this user cannot write to. Nothing is created here."""
    out = Path(output).expanduser().absolute()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise NoisedaError(f"--output {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NoisedaError(f"--output {output}: no permission to write in {existing}")


def restore_picture(net, spec: dict, pic: Picture, device, tile: Optional[int]) -> Picture:
    # In-place and copy-free where possible: an 8000x8000 image is 768 MB per float copy.
    rgb = torch.from_numpy(np.ascontiguousarray(pic.rgb)).permute(2, 0, 1)
    out = restore_safely(net, rgb, spec["value_range"], tile, 32, device).clamp_(0, 1)
    del rgb
    pixels = out.permute(1, 2, 0).numpy()
    if pic.pixels.shape[2] == 1:  # gray in, gray out
        pixels = pixels.mean(axis=2, keepdims=True)
    return Picture(pixels.astype(np.float32, copy=False), pic.alpha, pic.bit_depth)


def restore_paths(
    weights: str,
    inputs: Sequence[str],
    output: str,
    device: str = "cpu",
    tile: Optional[int] = 512,
    skip_existing: bool = False,
    suffix: Optional[str] = None,
    progress: bool = True,
    precision: str = "auto",
    compile: bool = False,
) -> tuple[int, list[tuple[Path, str]]]:
    """Returns (number restored, [(file, error)]) ; errors do not stop the batch."""
    from tqdm import tqdm

    jobs = plan_outputs(inputs, output, suffix)
    check_output_folder(output)
    net, spec = load_restorer(weights, device)
    net = for_inference(net, device, precision, compile)
    try:
        Path(output).expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NoisedaError(f"--output {output}: cannot create it ({exc.strerror or exc})") from None
    done, failed = 0, []
    with torch.inference_mode():
        resolved = getattr(net, "precision", "no")  # what auto resolved to
        numerics = "fp32" if resolved == "no" else resolved
        for src, dst in tqdm(jobs, disable=not progress, desc=f"restore ({numerics})", unit="img"):
            if skip_existing and dst.exists():
                continue
            try:
                write_image(dst, restore_picture(net, spec, read_image(src), device, tile))
                done += 1
            except NoisedaError as exc:
                failed.append((src, str(exc)))
            except OSError as exc:  # a full disk, a folder made read-only meanwhile: say so, go on
                failed.append((src, f"cannot write {dst}: {exc.strerror or exc}"))
    return done, failed
