"""Does a restorer shift intensities? Per RGB channel, the mean over images of (restored - clean)
and of (input - clean), and the PSNR before and after removing each restored image's own
per-channel mean shift (how much of its error is a global cast, not detail). Used to diagnose
CyCADA's and masked training's scores below the input (docs/results.md).

    python benchmarks/colour_shift.py --weights runs/x --pairs ../shared/data/denoise/real-val/polyu --out r.json
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from noiseda.data.store import load_image_pairs
from noiseda.evaluation.metrics import psnr
from noiseda.inference.export import load_restorer
from noiseda.inference.tiling import restore_safely


def colour_shift(weights: str, pairs_dir: str, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    net, spec = load_restorer(weights, "cpu")
    rows = []
    with torch.inference_mode():
        for name, x, y in load_image_pairs(pairs_dir, f"pairs {pairs_dir}"):
            out = restore_safely(net, x, spec["value_range"], 512, 32, "cpu").clamp(0, 1)
            shift = (out - y).mean(dim=(1, 2))
            rows.append({"image": name, "shift": shift.tolist(), "input_shift": (x - y).mean(dim=(1, 2)).tolist(),
                         "psnr": psnr(out, y), "psnr_without_shift": psnr((out - shift[:, None, None]).clamp(0, 1), y)})
    mean = lambda key: [sum(r[key][c] for r in rows) / len(rows) for c in range(3)]  # noqa: E731
    return {"weights": str(weights), "pairs": str(pairs_dir), "images": len(rows),
            "mean_shift_rgb": mean("shift"), "mean_input_shift_rgb": mean("input_shift"),
            "psnr": sum(r["psnr"] for r in rows) / len(rows),
            "psnr_without_shift": sum(r["psnr_without_shift"] for r in rows if math.isfinite(r["psnr_without_shift"])) / len(rows),
            "per_image": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="exported model folder or run folder")
    p.add_argument("--pairs", required=True, help="a folder with noisy/ (input/) and clean/ (target/)")
    p.add_argument("--out", help="JSON to write")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    result = colour_shift(args.weights, args.pairs, args.threads)
    print(json.dumps({k: v for k, v in result.items() if k != "per_image"}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
