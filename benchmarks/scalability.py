"""Scalability benchmark: does noise-da help across restoration nets? (the paper's A4.2)

For each net, `vanilla` vs `noise-da` on the quality benchmark's denoising setting (quality.py:
clean photos + AWGN, real unlabeled noisy photos, scored on the real PolyU pairs), same
preset, seed and steps; only the restoration net changes. The JSON is rewritten after every
net, so a cut-short run keeps what it finished.

    python benchmarks/scalability.py --data ../shared/data \
        --out benchmarks/results/scalability-cpu-small.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quality import PRESETS, common_settings, machine, run_methods

from noiseda.nets import build_net
from noiseda.nets.count import count_params

# name: config overrides; U-Net-T and Uformer-T as published, NAFNet at a small width (1.1M)
NETS = {
    "unet-t": ["net.name=unet-t"],
    "uformer-t": ["net.name=uformer-t"],
    "nafnet-16": ["net.name=nafnet", "net.width=16"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    ap.add_argument("--steps", type=int, help="override the preset's steps")
    ap.add_argument("--nets", nargs="+", choices=sorted(NETS), default=list(NETS))
    ap.add_argument("--runs", default="runs/scalability", help="where the training runs go")
    ap.add_argument("--out", required=True, help="JSON result path")
    args = ap.parse_args()

    data, out = Path(args.data), Path(args.out)
    result = {"benchmark": "scalability", "preset": args.preset, "machine": machine(),
              "test_set": str(data / "denoise" / "real-val" / "polyu"),
              "weights_scored": "EMA of the restorer", "nets": {}}
    for name in args.nets:
        common = common_settings(data, args.preset, args.steps, NETS[name])
        methods, input_row = run_methods(data, common, ["vanilla", "noise-da"], Path(args.runs) / args.preset / name)
        width = methods["vanilla"]["config"]["net"]["width"]
        net = build_net(methods["vanilla"]["config"]["net"]["name"], **({"width": width} if width else {}))
        result["nets"][name] = {"params": count_params(net), "methods": methods,
                                "noise_da_minus_vanilla_psnr": methods["noise-da"]["psnr"] - methods["vanilla"]["psnr"]}
        result["input"] = input_row
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"{name}: vanilla {methods['vanilla']['psnr']:.2f} dB, noise-da {methods['noise-da']['psnr']:.2f} dB",
              flush=True)


if __name__ == "__main__":
    main()
