"""Copy the data the GPU check needs into one small folder (the device tool carries 64 MiB).

PNGs are re-encoded as lossless WebP (about 20% smaller) and checked to decode to the same
pixels; other files are copied as they are. File stems are kept, so pairs still match.

    python benchmarks/pack_data.py --data ../shared/data --out .gpu-data
    python benchmarks/pack_data.py --data runs/split-denoise --parts train-clean real test \
        --out .gpu-data/split-denoise
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

# What benchmarks/quality.py reads.
PARTS = ["clean", "denoise/real-unlabeled", "denoise/real-val/polyu"]


def pack(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() != ".png":
        shutil.copyfile(src, dst)
        return
    with Image.open(src) as im:
        im.load()
        buf = io.BytesIO()
        im.save(buf, "WEBP", lossless=True, quality=100, method=4)
        with Image.open(io.BytesIO(buf.getvalue())) as back:
            same = im.mode in ("RGB", "RGBA", "L") and np.array_equal(np.array(back.convert(im.mode)), np.array(im))
    if same:
        dst.with_suffix(".webp").write_bytes(buf.getvalue())
    else:  # 16-bit or palette images: keep the PNG
        shutil.copyfile(src, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", nargs="+", default=PARTS, help=f"folders under --data (default: {' '.join(PARTS)})")
    args = ap.parse_args()
    root, out = Path(args.data), Path(args.out)
    for part in args.parts:
        for f in sorted((root / part).rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                target = out / f.relative_to(root)
                if not target.exists() and not target.with_suffix(".webp").exists():
                    pack(f, target)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
