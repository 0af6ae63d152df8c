"""Memory benchmark: `noiseda restore` on one very large image, end to end (read, tiled restore,
write), in a child process whose peak resident memory (ru_maxrss) is reported with MP/s.

    python benchmarks/restore_memory.py --size 8000 --net unet-s --out benchmarks/results/restore-memory-cpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from noiseda.inference.export import export_restorer
from noiseda.nets import build_net

from quality import machine

Image.MAX_IMAGE_PIXELS = None  # our own reader enforces noiseda's limit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8000, help="the image is size x size RGB (8-bit PNG)")
    ap.add_argument("--net", default="unet-s")
    ap.add_argument("--tile", default="auto")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        net = build_net(args.net)
        export_restorer(tmp / "weights", net.state_dict(), {"format": "noiseda-restorer/1", "net": args.net,
                                                           "kwargs": {}, "value_range": [0.0, 1.0]})
        # A smooth random photo-like image, written in horizontal strips to keep this process small.
        rng = np.random.default_rng(0)
        low = rng.random((args.size // 64 + 2, args.size // 64 + 2, 3))
        img = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((args.size, args.size), Image.BICUBIC))
        noisy = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape, dtype=np.int16), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(tmp / "big.png", compress_level=1)
        del low, img, noisy

        cmd = [sys.executable, "-m", "noiseda", "restore", "--weights", str(tmp / "weights"), "--input",
               str(tmp / "big.png"), "--output", str(tmp / "out"), "--device", args.device, "--tile", args.tile,
               "--no-progress"]
        tic = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - tic
        if proc.returncode != 0:
            raise SystemExit(f"restore failed: {proc.stderr.strip()[-500:]}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        out_size = Image.open(tmp / "out" / "big.png").size

    mp = args.size * args.size / 1e6
    result = {"benchmark": "restore-memory", "machine": machine(), "command": " ".join(cmd[1:]),
              "size": args.size, "net": args.net, "tile": args.tile, "device": args.device,
              "output_size": list(out_size), "seconds_end_to_end": seconds, "mp_per_s_end_to_end": mp / seconds,
              "peak_rss_gib": peak_kib / 2**20, "target_gib": 4.0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{args.size}x{args.size} {args.net}: peak RSS {result['peak_rss_gib']:.2f} GiB, "
          f"{result['mp_per_s_end_to_end']:.3f} MP/s end to end ({seconds:.0f} s); written {args.out}")


if __name__ == "__main__":
    main()
