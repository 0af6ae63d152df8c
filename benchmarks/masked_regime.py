"""Where does a masked-training restorer work?  Its PSNR and mean intensity shift (restored -
clean) on the simulated test pairs when a share of the input pixels is masked as in training
(-0.1, all channels), with and without masking a share of the tokens inside every attention
module. Nothing masked is what `noiseda evaluate` and `restore` do; the training condition is
0.8-0.9 input and 0.75 attention masking. Used to diagnose masked training's scores below the
noisy input (docs/results.md).

    python benchmarks/masked_regime.py --weights runs/sweep-masked-cpu/runs/masked/seed-0 \
        --pairs runs/split-denoise/test --out masked-regime.json
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from noiseda.data.store import load_image_pairs
from noiseda.evaluation.metrics import psnr
from noiseda.inference.export import load_restorer
from noiseda.methods.masked import drop_tokens, mask_pixels
from noiseda.nets.blocks import Attention

INPUT_SHARES = (0.0, 0.3, 0.6, 0.85)
ATTENTION_SHARES = (0.0, 0.75)


def mask_attention(net: torch.nn.Module, state: dict, generator: torch.Generator) -> None:
    """Zero ``state["share"]`` of the tokens entering each attention module (in any mode)."""

    def hook(module, args):
        if state["share"] <= 0:
            return None
        return (drop_tokens(args[0], state["share"], generator), *args[1:])

    for m in net.modules():
        if isinstance(m, Attention):
            m.register_forward_pre_hook(hook)


def regime(weights: str, pairs_dir: str, images: int, crop: int, mask_value: float = -0.1) -> dict:
    net, spec = load_restorer(weights, "cpu")
    lo, hi = spec["value_range"]
    state, generator = {"share": 0.0}, torch.Generator()
    mask_attention(net, state, generator)
    pairs = [(x[:, :crop, :crop], y[:, :crop, :crop]) for _, x, y in load_image_pairs(pairs_dir, f"pairs {pairs_dir}")]
    pairs = pairs[:images]
    input_psnr = sum(psnr(x, y) for x, y in pairs) / len(pairs)
    rows = []
    with torch.inference_mode():
        for attention in ATTENTION_SHARES:
            for share in INPUT_SHARES:
                state["share"] = attention
                generator.manual_seed(0)
                torch.manual_seed(0)  # mask_pixels draws from the global generator
                scores, shifts = [], []
                for x, y in pairs:
                    inp = (x * (hi - lo) + lo)[None]
                    inp = mask_pixels(inp, share, share, mask_value) if share else inp
                    out = ((net(inp)[0] - lo) / (hi - lo)).clamp(0, 1)
                    scores.append(psnr(out, y))
                    shifts.append((out - y).mean().item())
                rows.append({"input_mask": share, "attention_mask": attention, "psnr": sum(scores) / len(scores),
                             "shift": sum(shifts) / len(shifts), "input_psnr": input_psnr})
                print(json.dumps(rows[-1]), flush=True)
    return {"weights": str(weights), "pairs": str(pairs_dir), "images": len(pairs), "crop": crop, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", nargs="+", required=True, help="exported model or run folders")
    p.add_argument("--pairs", required=True, help="a folder with noisy/ (input/) and clean/ (target/)")
    p.add_argument("--images", type=int, default=10, help="the first N pairs (default 10)")
    p.add_argument("--crop", type=int, default=128, help="top-left crop in pixels, a multiple of the window")
    p.add_argument("--out", required=True, help="JSON to write")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = [regime(w, args.pairs, args.images, args.crop) for w in args.weights]
    machine = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
               "threads": args.threads}
    with open(args.out, "w") as f:
        json.dump({"machine": machine, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
