"""`noiseda restore`: files, folders (mirrored recursively) and globs, one failure never stops the batch."""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from noiseda.inference.export import load_restorer
from noiseda.data.io import Picture, is_image, read_image, write_image
from noiseda.errors import NoisedaError
from noiseda.inference.tiling import for_inference, restore_safely


@dataclass
class Plan:
    jobs: list[tuple[Path, Path]]  # (input image, output file)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files in the inputs that are not restored, and why


def _unsupported(f: Path) -> Optional[str]:
    """Why a file found in an input folder is not restored (None: it is an image to restore)."""
    if f.is_symlink() and not f.exists():
        return "broken link"
    if not f.is_file():
        return None  # a folder: its files are listed themselves
    if is_image(f):
        return None
    return f"not a supported image ({f.suffix.lower() or 'no suffix'})"


def _not_in_output(files: list[Path], root: Path, out_abs: Path) -> list[Path]:
    """An output folder inside the input folder `root` holds earlier outputs, not inputs."""
    root = root.absolute()
    if out_abs == root:
        raise NoisedaError(f"--output {out_abs} is the input folder: restoring would overwrite an input image; "
                           "choose another --output")
    if not out_abs.is_relative_to(root):
        return files
    return [f for f in files if not f.absolute().is_relative_to(out_abs)]


def plan_outputs(inputs: Sequence[str], output: str, suffix: Optional[str] = None) -> Plan:
    """(input file, output file) for every image, and the files left out with their reason;
    refuses any output that is an input. An output folder inside an input folder is not input."""
    out_root = Path(output).expanduser()
    out_abs = out_root.absolute()
    plan = Plan([])
    for spec in inputs:
        p = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            files = [Path(m) for m in sorted(glob.glob(spec, recursive=True))]
            fixed = re.split(r"[*?[]", spec)[0]  # "photos/img*.jpg" -> "photos/img": the folder is photos/
            root = Path(fixed).expanduser() if fixed.endswith(("/", os.sep)) else Path(fixed or "x").expanduser().parent
            if root.absolute() != out_abs:  # the same folder: names are checked one by one below
                files = _not_in_output(files, root, out_abs)
            plan.skipped += [(f, why) for f in files if (why := _unsupported(f))]
            plan.jobs += [(f, out_root / f.name) for f in files if f.is_file() and is_image(f)]
        elif p.is_dir():
            files = _not_in_output(sorted(f for f in p.rglob("*") if not f.name.startswith(".")), p, out_abs)
            plan.skipped += [(f, why) for f in files if (why := _unsupported(f))]
            plan.jobs += [(f, out_root / f.relative_to(p)) for f in files if f.is_file() and is_image(f)]
        elif p.is_file():
            plan.jobs.append((p, out_root / p.name))
        else:
            raise NoisedaError(f"input not found: {spec}")
    if not plan.jobs:
        raise NoisedaError(f"no images found in {', '.join(inputs)}")
    if suffix:
        ext = suffix if suffix.startswith(".") else f".{suffix}"
        plan.jobs = [(i, o.with_suffix(ext)) for i, o in plan.jobs]
    sources = {i.resolve() for i, _ in plan.jobs}
    for _, o in plan.jobs:
        if o.resolve() in sources:
            raise NoisedaError(f"output {o} would overwrite an input image; choose another --output")
    return plan


def check_output_folder(output: str, option: str = "--output") -> None:
    """Refuse, before any work, an --output that cannot become a writable folder: a file, a
    path through a file, or a place this user cannot write to. Nothing is left behind here."""
    out = Path(output).expanduser().absolute()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise NoisedaError(f"{option} {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NoisedaError(f"{option} {output}: no permission to write in {existing}")
    try:  # root passes os.access everywhere; a read-only or virtual file system only shows on trying
        os.rmdir(tempfile.mkdtemp(prefix=".noiseda-probe-", dir=existing))
    except OSError as exc:
        raise NoisedaError(f"{option} {output}: cannot write in {existing} ({exc.strerror or exc})") from None


def restore_picture(net, spec: dict, pic: Picture, device, tile: Optional[int]) -> Picture:
    # In-place and copy-free where possible: an 8000x8000 image is 768 MB per float copy.
    rgb = torch.from_numpy(np.ascontiguousarray(pic.rgb)).permute(2, 0, 1)
    out = restore_safely(net, rgb, spec["value_range"], tile, 32, device).clamp_(0, 1)
    del rgb
    pixels = out.permute(1, 2, 0).numpy()
    if pic.pixels.shape[2] == 1:  # gray in, gray out
        pixels = pixels.mean(axis=2, keepdims=True)
    return dataclasses.replace(pic, pixels=pixels.astype(np.float32, copy=False))  # metadata kept


@dataclass
class Outcome:
    restored: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (input, why): the batch went on
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files in the inputs not restored
    kept: int = 0  # outputs that existed and were left alone (no --overwrite)


def restore_paths(
    weights: str,
    inputs: Sequence[str],
    output: str,
    device: str = "cpu",
    tile: Optional[int] = 512,
    overwrite: bool = False,
    suffix: Optional[str] = None,
    progress: bool = True,
    precision: str = "auto",
    compile: bool = False,
) -> Outcome:
    """Restore every image; one failure never stops the batch. Outputs that exist are kept
    unless ``overwrite`` (so rerunning an interrupted batch restores only what is missing).
    Ctrl-C stops after the current image (outputs are written whole or not at all) and raises
    KeyboardInterrupt with the counts so far in ``outcome``."""
    from tqdm import tqdm

    plan = plan_outputs(inputs, output, suffix)
    check_output_folder(output)
    net, spec = load_restorer(weights, device)
    net = for_inference(net, device, precision, compile)
    try:
        Path(output).expanduser().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NoisedaError(f"--output {output}: cannot create it ({exc.strerror or exc})") from None
    outcome = Outcome(skipped=plan.skipped)
    with torch.inference_mode():
        resolved = getattr(net, "precision", "no")  # what auto resolved to
        numerics = "fp32" if resolved == "no" else resolved
        for src, dst in tqdm(plan.jobs, disable=not progress, desc=f"restore ({numerics})", unit="img"):
            if dst.exists() and not overwrite:
                outcome.kept += 1
                continue
            try:
                pic = read_image(src)
                if pic.frames > 1:
                    raise NoisedaError(f"{src}: an animated image ({pic.frames} frames); noiseda restores "
                                       "still images: extract its frames first")
                write_image(dst, restore_picture(net, spec, pic, device, tile))
                outcome.restored += 1
            except NoisedaError as exc:
                outcome.failed.append((src, str(exc)))
            except OSError as exc:  # a full disk, a folder made read-only meanwhile: say so, go on
                outcome.failed.append((src, f"cannot write {dst}: {exc.strerror or exc}"))
            except KeyboardInterrupt:
                raise RestoreInterrupted(outcome, len(plan.jobs)) from None
    return outcome


class RestoreInterrupted(KeyboardInterrupt):
    def __init__(self, outcome: Outcome, total: int):
        super().__init__()
        self.outcome, self.total = outcome, total
