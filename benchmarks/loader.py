"""Training-data throughput: can the data loader feed the GPU?

Builds the training sample stream as `noiseda train` does (synthetic clean images + a
degradation, real unlabeled images; one training sample = one synthetic pair + one real crop)
and times the DataLoader for each `data.cache` mode and number of workers, side by side in
one run. Reports samples/s, the time to fill the cache, and what the cache holds. The
decoded-image cache goes to a fresh temporary folder, so `disk` includes writing it.
`disk` reads the cache files through the OS page cache, warm after the first pass as on a
machine with memory to spare; `disk-cold` drops them from the page cache (posix_fadvise)
before every timed pass, as when the decoded set is far larger than memory.

`--upscale K` first writes bicubic K-times enlarged copies of the images (PNG) to a
temporary folder, to time decoding at the size of the paper's training sets (DIV2K about
2040x1400, SIDD-Medium 5256x3000) with development images of 0.15-0.4 MP.

    python benchmarks/loader.py --clean ../shared/data/clean --real ../shared/data/denoise/real-unlabeled \
        --upscale 3 --out benchmarks/results/loader-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from noiseda.config import load_config
from noiseda.data.files import list_images
from noiseda.data.samples import StepBatches
from noiseda.data.store import decoded_cache_dir
from noiseda.data.setup import build_samples

from quality import machine


def enlarge(files: list[Path], factor: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for i, f in enumerate(files):
        with Image.open(f) as im:
            im = im.convert("RGB")
            big = im.resize((im.width * factor, im.height * factor), Image.Resampling.BICUBIC)
        dst = out / f"{i:04d}_{f.stem}.png"
        big.save(dst)
        done.append(dst)
    return done


def pixel_counts(files: list[Path]) -> list[int]:
    counts = []
    for f in files:
        with Image.open(f) as im:
            counts.append(im.width * im.height)
    return counts


def cache_bytes(samples, mode: str) -> int:
    stores = {id(s): s for s in (samples.syn.store, getattr(samples.real, "store", None)) if s is not None}
    if mode == "memory":
        return sum(a.nbytes for s in stores.values() for a in s._memory.values())
    if mode == "disk":
        return sum(f.stat().st_size for f in decoded_cache_dir().glob("*.npy"))
    return 0


def drop_from_page_cache(files) -> None:
    """Evict files from the OS page cache (written back first: dirty pages cannot be dropped)."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_loader(samples, batch: int, workers: int, steps: int, repeats: int, cold: bool = False) -> dict:
    rates = []
    for r in range(repeats):
        if cold:
            drop_from_page_cache(decoded_cache_dir().glob("*.npy"))
        loader = DataLoader(samples, batch_sampler=StepBatches(r * (steps + 1), batch, steps=(r + 1) * (steps + 1)),
                            num_workers=workers, persistent_workers=False)
        it = iter(loader)
        next(it)  # worker start-up and the first batch are not timed
        tic = time.perf_counter()
        n = sum(1 for _ in it)
        rates.append(n * batch / (time.perf_counter() - tic))
        del it, loader
    return {"workers": workers, "samples_per_s": statistics.median(rates), "samples_per_s_runs": rates}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", nargs="+", required=True, help="clean images (the synthetic side)")
    ap.add_argument("--real", nargs="+", required=True, help="unlabeled real degraded images")
    ap.add_argument("--degradation", default="awgn")
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed batches per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    ap.add_argument("--cache", nargs="+", choices=["none", "memory", "disk", "disk-cold"],
                    default=["none", "memory", "disk", "disk-cold"])
    ap.add_argument("--upscale", type=int, default=1, help="enlarge every image K times first (bicubic)")
    ap.add_argument("--max-images", type=int, default=0, help="use the first N images of each side (0: all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="noiseda-loader-") as tmp:
        tmp = Path(tmp)
        sides = {}
        for name, specs in (("clean", args.clean), ("real", args.real)):
            files = list_images(specs, name)[: args.max_images or None]
            if args.upscale > 1:
                files = enlarge(files, args.upscale, tmp / name)
            sides[name] = files
            flist = tmp / f"{name}.flist"
            flist.write_text("".join(f"{f.resolve()}\n" for f in files))
            sides[name + "_list"] = flist

        result = {"benchmark": "loader", "machine": machine(), "torch_threads": torch.get_num_threads(),
                  "batch": args.batch, "patch": args.patch, "degradation": args.degradation,
                  "upscale": args.upscale, "note": "one sample = one synthetic (clean + degraded) crop + one real crop",
                  "images": {k: {"count": len(sides[k]), "mean_megapixels": statistics.mean(pixel_counts(sides[k])) / 1e6}
                             for k in ("clean", "real")},
                  # what the memory cache held before it kept the files' own sample type (float32 RGB)
                  "float32_cache_bytes": 12 * sum(pixel_counts(sides["clean"] + sides["real"])),
                  "modes": {}}
        for mode in args.cache:
            os.environ["NOISEDA_CACHE"] = str(tmp / f"cache-{mode}")
            cfg = load_config(None, [f"data.clean={sides['clean_list']}", f"data.real={sides['real_list']}",
                                     f"data.degradation={args.degradation}", f"data.cache={mode.split('-')[0]}",
                                     f"data.patch_size={args.patch}", f"train.batch_size={args.batch}"])
            tic = time.perf_counter()
            samples = build_samples(cfg, needs_real=True, needs_reference=False)
            setup = time.perf_counter() - tic
            row = {"setup_s": setup, "cache_bytes": cache_bytes(samples, mode.split("-")[0]), "loaders": []}
            for w in args.workers:
                row["loaders"].append(time_loader(samples, args.batch, w, args.steps, args.repeats, mode == "disk-cold"))
                print(f"cache={mode} workers={w}: {row['loaders'][-1]['samples_per_s']:.1f} samples/s", flush=True)
            result["modes"][mode] = row
            Path(args.out).write_text(json.dumps(result, indent=1))  # after each mode: a cut run keeps its numbers
        # Per-sample decoding cost for the `none` mode, in ms per megapixel (one decode of each clean image).
        from noiseda.data.io import read_image

        per_mp = []
        for f in sides["clean"][:8]:
            tic = time.perf_counter()
            pic = read_image(f)
            per_mp.append((time.perf_counter() - tic) * 1e3 / (pic.pixels.shape[0] * pic.pixels.shape[1] / 1e6))
        result["decode_ms_per_megapixel"] = statistics.median(per_mp)
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(json.dumps({m: [round(x["samples_per_s"], 1) for x in r["loaders"]] for m, r in result["modes"].items()}))


if __name__ == "__main__":
    main()
