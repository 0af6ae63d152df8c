"""`noiseda prepare`: cut large images (or aligned pairs) into patches, in parallel, resumably.

Single images go to ``OUT/patches/``; pairs to ``OUT/input/`` and ``OUT/target/`` with the
same names, so ``data.clean: OUT/patches`` or ``data.pairs: OUT`` trains on them. Each
source's patches are written (atomically, file by file) before its line is appended to
``OUT/progress.jsonl``; a rerun skips the sources listed there. ``OUT/manifest.json`` is
written at the end: parameters, sources and patch names.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from noiseda.data.io import Picture, read_image, write_atomic, write_image
from noiseda.errors import NoisedaError


def _windows(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)  # cover the far border too
    return starts


def _crop(pic: Picture, top: int, left: int, size: int) -> Picture:
    sl = (slice(top, top + size), slice(left, left + size))
    return Picture(pic.pixels[sl], None if pic.alpha is None else pic.alpha[sl], pic.bit_depth)


def cut_source(job: tuple) -> dict:
    """Patches of one image (or pair); returns the record appended to progress.jsonl."""
    index, src, gt, out, size, stride, min_std = job
    x = read_image(src)
    y = read_image(gt) if gt is not None else None
    if y is not None and x.pixels.shape[:2] != y.pixels.shape[:2]:
        raise NoisedaError(f"size mismatch: {src} vs {gt}")
    h, w = x.pixels.shape[:2]
    names, skipped = [], 0
    suffix = ".png" if x.bit_depth <= 16 else ".tif"
    for top in _windows(h, size, stride):
        for left in _windows(w, size, stride):
            clean = _crop(y if y is not None else x, top, left, size)
            if float(np.std(clean.pixels)) < min_std:  # flat sky, walls: little to learn from
                skipped += 1
                continue
            name = f"{index:06d}_{Path(src).stem}_{top}_{left}{suffix}"
            if y is None:
                write_image(Path(out) / "patches" / name, clean)
            else:
                write_image(Path(out) / "input" / name, _crop(x, top, left, size))
                write_image(Path(out) / "target" / name, clean)
            names.append(name)
    return {"source": str(src), "target": None if gt is None else str(gt), "patches": names, "skipped": skipped}


def prepare(
    sources: Sequence[tuple[Path, Optional[Path]]],
    out: str | Path,
    size: int = 512,
    stride: Optional[int] = None,
    min_std: float = 0.0,
    workers: int = 0,
    progress: bool = True,
) -> dict:
    from tqdm import tqdm

    out = Path(out)
    stride = stride or size
    if size < 8 or stride < 1:
        raise NoisedaError(f"prepare: bad patch size {size} or stride {stride}")
    inputs = {Path(s).resolve() for s, _ in sources} | {Path(g).resolve() for _, g in sources if g}
    if out.resolve() in inputs or any(out.resolve() == p.parent for p in inputs):
        raise NoisedaError(f"prepare: output folder {out} holds input images; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "progress.jsonl"
    done = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["source"]] = rec
    jobs = [(i, str(s), None if g is None else str(g), str(out), size, stride, min_std)
            for i, (s, g) in enumerate(sources) if str(s) not in done]
    records = list(done.values())
    bar = tqdm(total=len(sources), initial=len(sources) - len(jobs), disable=not progress, desc="prepare", unit="img")
    with open(log, "a") as f:

        def record(rec: dict) -> None:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            records.append(rec)
            bar.update(1)

        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for rec in pool.map(cut_source, jobs):
                    record(rec)
        else:
            for rec in map(cut_source, jobs):
                record(rec)
    bar.close()
    manifest = {
        "size": size, "stride": stride, "min_std": min_std, "paired": any(g for _, g in sources),
        "sources": len(records), "patches": sum(len(r["patches"]) for r in records),
        "skipped_flat": sum(r["skipped"] for r in records), "records": records,
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest
