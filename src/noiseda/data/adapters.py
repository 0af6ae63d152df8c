"""Adapters for the paper's datasets in their published layouts.

Anywhere a folder is accepted, ``NAME:PATH`` selects an adapter, e.g.
``data.real: sidd-medium:/data/SIDD_Medium_Srgb`` or
``data.pairs: gopro:/data/GOPRO_Large/train``. Each adapter checks the layout
and says what it expected when it does not match. An adapter returns pairs
(degraded, clean); where a role needs single images (the real domain, clean
sets) the degraded side is used, or the clean side for clean-only roles.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from noiseda.data.io import Picture, is_image, write_image
from noiseda.errors import NoisedaError
from noiseda.registry import Registry

Pairs = list[tuple[Path, Optional[Path]]]  # (degraded or clean image, its ground truth if any)
ADAPTERS: Registry = Registry("dataset adapter")
_SPEC = re.compile(r"^([a-z0-9][a-z0-9-]*):(.+)$")


def split_spec(spec: str) -> tuple[Optional[str], str]:
    """``"gopro:/data/x"`` -> ("gopro", "/data/x"); a plain path -> (None, path)."""
    m = _SPEC.match(spec)
    if m and m.group(1) in ADAPTERS:
        return m.group(1), m.group(2)
    if m and not Path(spec).exists() and len(m.group(1)) > 1:
        ADAPTERS.get(m.group(1))  # raises "unknown dataset adapter ... did you mean"
    return None, spec


def resolve(spec: str, what: str) -> Optional[Pairs]:
    """Pairs for an adapter spec, or None when ``spec`` is a plain path."""
    name, root = split_spec(spec)
    if name is None:
        return None
    path = Path(root).expanduser()
    if not path.exists():
        raise NoisedaError(f"{what}: {name}: no such file or folder: {path}")
    pairs = ADAPTERS.get(name)(path)
    if not pairs:
        raise NoisedaError(f"{what}: {name}: no images found in {path}")
    return pairs


def _expect(cond: bool, name: str, root: Path, expected: str) -> None:
    if not cond:
        raise NoisedaError(f"{name}: {root} does not look like {name} (expected {expected})")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p) and not p.name.startswith("."))


def _match_by_stem(inputs: list[Path], targets: list[Path], name: str, norm: Callable[[str], str] = str) -> Pairs:
    by_t = {norm(t.stem): t for t in targets}
    missing = [i.name for i in inputs if norm(i.stem) not in by_t]
    if missing:
        raise NoisedaError(f"{name}: {len(missing)} image(s) have no ground truth, e.g. {missing[0]}")
    return [(i, by_t[norm(i.stem)]) for i in inputs]


def _listed(folder: Path, entry: str) -> Path:
    """A list entry relative to the list's folder; SPA's test list writes them as "/real_test_1000/...",
    so a leading slash is read as relative unless the absolute path exists."""
    p = Path(entry)
    if p.is_absolute() and not p.exists():
        return folder / entry.lstrip("/")
    return folder / p


def _list_file_pairs(list_file: Path, name: str, order: str) -> Pairs:
    """Lines of two paths relative to the list file's folder; ``order`` is "input gt" or "gt input"."""
    pairs = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise NoisedaError(f"{name}: {list_file} line {n}: expected two paths ({order})")
        a, b = (_listed(list_file.parent, p) for p in parts[:2])
        inp, gt = (a, b) if order == "input gt" else (b, a)
        for f in (inp, gt):
            if not f.is_file():
                raise NoisedaError(f"{name}: {list_file} line {n}: no such file {f}")
        pairs.append((inp, gt))
    return pairs


@ADAPTERS.register("sidd-medium")
def sidd_medium(root: Path) -> Pairs:
    """SIDD-Medium sRGB: Data/<scene>/*_NOISY_SRGB_*.PNG with *_GT_SRGB_* beside them."""
    data = root / "Data" if (root / "Data").is_dir() else root
    noisy = sorted(data.glob("*/*NOISY_SRGB_*.PNG")) + sorted(data.glob("*/*NOISY_SRGB_*.png"))
    _expect(bool(noisy), "sidd-medium", root, "Data/<scene>/*_NOISY_SRGB_*.PNG")
    pairs = []
    for n in noisy:
        gt = n.with_name(n.name.replace("NOISY_SRGB", "GT_SRGB"))
        _expect(gt.is_file(), "sidd-medium", root, f"{gt.name} beside {n.name}")
        pairs.append((n, gt))
    return pairs


def _cache_dir(source: Path, tag: str) -> Path:
    base = Path(os.environ.get("NOISEDA_CACHE", Path.home() / ".cache" / "noiseda"))
    key = hashlib.sha1(f"{source.resolve()}:{source.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return base / f"{tag}-{key}"


@ADAPTERS.register("sidd-val")
def sidd_validation(root: Path) -> Pairs:
    """SIDD validation: ValidationNoisyBlocksSrgb.mat + ValidationGtBlocksSrgb.mat (40 images x
    32 blocks of 256x256, uint8). Blocks are written once as PNG pairs to a cache folder
    ($NOISEDA_CACHE, default ~/.cache/noiseda), atomically."""
    noisy_mat, gt_mat = root / "ValidationNoisyBlocksSrgb.mat", root / "ValidationGtBlocksSrgb.mat"
    _expect(noisy_mat.is_file() and gt_mat.is_file(), "sidd-val", root,
            "ValidationNoisyBlocksSrgb.mat and ValidationGtBlocksSrgb.mat")
    out = _cache_dir(noisy_mat, "sidd-val")
    if not out.is_dir():
        from scipy.io import loadmat

        try:
            noisy = loadmat(str(noisy_mat))["ValidationNoisyBlocksSrgb"]
            gt = loadmat(str(gt_mat))["ValidationGtBlocksSrgb"]
        except Exception as exc:
            raise NoisedaError(f"sidd-val: cannot read the .mat files in {root}: {exc}") from None
        if noisy.shape != gt.shape or noisy.ndim != 5:
            raise NoisedaError(f"sidd-val: expected two (images, blocks, H, W, 3) arrays, got {noisy.shape}, {gt.shape}")
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for i in range(noisy.shape[0]):
            for j in range(noisy.shape[1]):
                for side, arr in (("noisy", noisy), ("clean", gt)):
                    pic = Picture(arr[i, j].astype(np.float32) / 255.0)
                    write_image(tmp / side / f"{i:02d}_{j:02d}.png", pic)
        tmp.rename(out)
    return [(p, out / "clean" / p.name) for p in sorted((out / "noisy").glob("*.png"))]


@ADAPTERS.register("rain13k")
def rain13k(root: Path) -> Pairs:
    """Rain13K (and its test sets): input/ and target/ with the same file names."""
    _expect((root / "input").is_dir() and (root / "target").is_dir(), "rain13k", root, "input/ and target/")
    return _match_by_stem(_images(root / "input"), _images(root / "target"), "rain13k")


@ADAPTERS.register("spa")
def spa(root: Path) -> Pairs:
    """SPA-Data: a list file (``real_world.txt`` or ``real_test_1000.txt``: lines "rainy gt",
    relative to the list's folder, the test list's with a leading slash), or a folder holding
    ``real_test_1000/`` with rain/ and gt/ (gt names carry a trailing "gt")."""
    lists = sorted(root.glob("*.txt")) if root.is_dir() else [root]
    test = root / "real_test_1000" if (root / "real_test_1000").is_dir() else root
    if (test / "rain").is_dir() and (test / "gt").is_dir():
        strip = lambda s: re.sub(r"_?gt$", "", s)  # noqa: E731
        return _match_by_stem(_images(test / "rain"), _images(test / "gt"), "spa", strip)
    _expect(len(lists) == 1, "spa", root, "one training list file (lines 'rainy gt') or real_test_1000/{rain,gt}")
    return _list_file_pairs(lists[0], "spa", "input gt")


@ADAPTERS.register("gopro")
def gopro(root: Path) -> Pairs:
    """GoPro (GOPRO_Large/train or test): <sequence>/blur/*.png with <sequence>/sharp/*.png."""
    blur = sorted(root.glob("*/blur/*.png"))
    _expect(bool(blur), "gopro", root, "<sequence>/blur/*.png and <sequence>/sharp/*.png")
    pairs = []
    for b in blur:
        s = b.parent.parent / "sharp" / b.name
        _expect(s.is_file(), "gopro", root, f"{s} for {b}")
        pairs.append((b, s))
    return pairs


@ADAPTERS.register("realblur")
def realblur(root: Path) -> Pairs:
    """RealBlur-J / -R: a list file (RealBlur_J_train_list.txt, ...) whose lines are "gt blur"
    paths relative to the dataset root; give the list file, or the root holding exactly one."""
    if root.is_file():
        return _list_file_pairs(root, "realblur", "gt input")
    lists = sorted(root.glob("RealBlur_*_list.txt"))
    _expect(len(lists) == 1, "realblur", root,
            "one RealBlur_*_list.txt (give the list file itself to choose among several)")
    return _list_file_pairs(lists[0], "realblur", "gt input")


@ADAPTERS.register("dfwb")
def dfwb(root: Path) -> Pairs:
    """The DFWB clean set: any of DIV2K, Flickr2K, WED (Waterloo Exploration) and BSD folders
    under the root (found by name, searched recursively for images)."""
    found = [d for d in sorted(root.iterdir()) if d.is_dir() and re.match(r"(?i)(div2k|flickr2k|wed|waterloo|bsd)", d.name)]
    _expect(bool(found), "dfwb", root, "DIV2K*/, Flickr2K*/, WED*/ or BSD*/ folders")
    return [(p, None) for d in found for p in _images(d)]


@ADAPTERS.register("coco")
def coco(root: Path) -> Pairs:
    """MS-COCO (or any plain folder) as unpaired clean references for noise-da-ex."""
    return [(p, None) for p in _images(root)]
