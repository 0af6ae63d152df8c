"""Image discovery and pair matching: folders, globs, list files and ``ADAPTER:PATH`` specs
-> image paths, and degraded/clean folders -> (input, target) pairs matched by file name."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Optional, Sequence

from noiseda.data.io import is_image
from noiseda.errors import NoisedaError

INPUT_DIR_NAMES = ("noisy", "input", "degraded", "rain", "rainy", "blur", "blurry", "lq")
TARGET_DIR_NAMES = ("clean", "target", "gt", "groundtruth", "sharp", "norain", "hq")


def read_flist(path: Path, what: str) -> list[Path]:
    """A list file: one image path per line (relative paths are relative to the list's folder;
    blank lines and # comments ignored). Every listed file must exist."""
    files = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        f = Path(line).expanduser()
        f = f if f.is_absolute() else path.parent / f
        if not f.is_file():
            raise NoisedaError(f"{what}: {path} line {n}: no such file {f}")
        files.append(f)
    if not files:
        raise NoisedaError(f"{what}: list file {path} names no images")
    return files


def list_images(specs: Sequence[str], what: str, clean_side: bool = False) -> list[Path]:
    """Folders (searched recursively), single files, ``.flist``/``.txt`` list files, glob
    patterns, or ``ADAPTER:PATH`` dataset specs -> image paths (sorted within each spec).
    For paired datasets, ``clean_side`` picks the ground truth instead of the degraded side."""
    from noiseda.data.adapters import resolve

    if not specs:
        raise NoisedaError(f"{what}: no folder given")
    found: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        adapted = resolve(spec, what)
        if adapted is not None:
            files = [gt if clean_side and gt is not None else x for x, gt in adapted]
        elif any(ch in spec for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
            files = [m for m in matches if m.is_file() and is_image(m)]
            if not files:
                raise NoisedaError(f"{what}: no images match {spec}")
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and is_image(f) and not f.name.startswith("."))
            if not files:
                raise NoisedaError(f"{what}: no images in folder {p}")
        elif p.is_file() and p.suffix.lower() in (".flist", ".txt"):
            files = read_flist(p, what)
        elif p.is_file():
            if not is_image(p):
                raise NoisedaError(f"{what}: not an image file: {p}")
            files = [p]
        else:
            raise NoisedaError(f"{what}: no such file or folder: {p}")
        found.extend(files)
    return found


def _key(path: Path, root: Optional[Path]) -> str:
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    return str(rel.with_suffix(""))


def _root(specs: Sequence[str]) -> Optional[Path]:
    return Path(specs[0]).expanduser() if len(specs) == 1 and Path(specs[0]).expanduser().is_dir() else None


def match_pairs(inputs: Sequence[str], targets: Sequence[str], what: str) -> list[tuple[Path, Path]]:
    """Pair degraded and clean images by file name (without extension, relative to the folder)."""
    ins, outs = list_images(inputs, f"{what} inputs"), list_images(targets, f"{what} targets")
    ri, rt = _root(inputs), _root(targets)
    by_in = {_key(p, ri): p for p in ins}
    by_out = {_key(p, rt): p for p in outs}
    only_in, only_out = sorted(set(by_in) - set(by_out)), sorted(set(by_out) - set(by_in))
    if only_in or only_out:
        side, names = ("have no target", only_in) if only_in else ("have no input", only_out)
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        raise NoisedaError(f"{what}: {len(names)} image(s) {side}: {shown}")
    return [(by_in[k], by_out[k]) for k in sorted(by_in)]


def find_pair_dirs(folder: str | Path, what: str = "pairs") -> tuple[Path, Path]:
    """A folder holding a degraded subfolder (noisy/, input/, ...) and a clean one (clean/, target/, ...)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise NoisedaError(f"{what}: no such folder: {root}")
    subdirs = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    ins = [subdirs[n] for n in INPUT_DIR_NAMES if n in subdirs]
    outs = [subdirs[n] for n in TARGET_DIR_NAMES if n in subdirs]
    if not ins or not outs:
        raise NoisedaError(
            f"{what}: {root} needs a degraded subfolder ({'/'.join(INPUT_DIR_NAMES[:3])}/...) "
            f"and a clean one ({'/'.join(TARGET_DIR_NAMES[:3])}/...)"
        )
    return ins[0], outs[0]


def load_pairs(folder: str | Path, what: str = "pairs") -> list[tuple[Path, Path]]:
    """Pairs from a folder with degraded + clean subfolders, or from an ``ADAPTER:PATH`` spec."""
    from noiseda.data.adapters import resolve

    adapted = resolve(str(folder), what)
    if adapted is not None:
        if any(gt is None for _, gt in adapted):
            raise NoisedaError(f"{what}: {folder} has no ground truth (a clean-only dataset)")
        return adapted
    i, t = find_pair_dirs(folder, what)
    return match_pairs([str(i)], [str(t)], what)
