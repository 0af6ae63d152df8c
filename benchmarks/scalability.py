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

# name: config overrides. U-Net-T as published; NAFNet at a small width (1.1M); Uformer-T's
# widths and depths with 4x4 windows ("uformer-t-win4"), whose inputs need a multiple of 64 (not
# 128), so the CPU preset's 64 px patches are not padded to four times their area (which would
# make its run about 4x longer than the others). "uformer-t" (8x8 windows) for 128 px presets.
NETS = {
    "unet-t": ["net.name=unet-t"],
    "nafnet-16": ["net.name=nafnet", "net.width=16"],
    "uformer-t-win4": ["net.name=uformer", "net.width=16", "net.options.depths=[2,2,2,2]",
                       "net.options.bottleneck_depth=2", "net.options.win=4"],
    "uformer-t": ["net.name=uformer-t"],
}
CPU_NETS = ["unet-t", "nafnet-16", "uformer-t-win4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    ap.add_argument("--steps", type=int, help="override the preset's steps")
    ap.add_argument("--nets", nargs="+", choices=sorted(NETS), default=CPU_NETS)
    ap.add_argument("--runs", default="runs/scalability", help="where the training runs go")
    ap.add_argument("--out", required=True, help="JSON result path")
    args = ap.parse_args()

    data, out = Path(args.data), Path(args.out)
    result = {"benchmark": "scalability", "preset": args.preset, "steps": args.steps, "machine": machine(),
              "test_set": str(data / "denoise" / "real-val" / "polyu"),
              "weights_scored": "EMA of the restorer", "nets": {}}
    if out.is_file():  # a run cut short: keep the nets it finished with the same preset and steps
        done = json.loads(out.read_text())
        if (done.get("preset"), done.get("steps")) == (args.preset, args.steps):
            result["nets"], result["input"] = done["nets"], done.get("input")
    for name in args.nets:
        if name in result["nets"]:
            print(f"{name}: already in {out}", flush=True)
            continue
        common = common_settings(data, args.preset, args.steps, NETS[name])
        methods, input_row = run_methods(data, common, ["vanilla", "noise-da"], Path(args.runs) / args.preset / name)
        net_cfg = methods["vanilla"]["config"]["net"]
        net = build_net(net_cfg["name"], **({"width": net_cfg["width"]} if net_cfg["width"] else {}), **net_cfg["options"])
        result["nets"][name] = {"params": count_params(net), "methods": methods,
                                "noise_da_minus_vanilla_psnr": methods["noise-da"]["psnr"] - methods["vanilla"]["psnr"]}
        result["input"] = input_row
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"{name}: vanilla {methods['vanilla']['psnr']:.2f} dB, noise-da {methods['noise-da']['psnr']:.2f} dB",
              flush=True)


if __name__ == "__main__":
    main()
