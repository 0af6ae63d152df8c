"""Quality benchmark: vanilla vs noise-da, same seed, same steps, scored on real noisy/clean pairs.

Synthetic side: clean photos (+ AWGN) from DATA/clean; real side: the unlabeled
real noisy photos in DATA/denoise/real-unlabeled; test: DATA/denoise/real-val/polyu
(real noisy/clean pairs of other scenes). Writes one JSON with machine details.

    python benchmarks/quality.py --data ../shared/data --preset cpu-small \
        --out benchmarks/results/quality-cpu-small.json
    python benchmarks/quality.py --data DATA --preset gpu-paper --steps 800 --out ...
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from noiseda import __version__
from noiseda.inference.export import load_restorer
from noiseda.config import config_to_dict, load_config
from noiseda.evaluation.evaluate import score_pairs, summarize
from noiseda.inference.tiling import for_inference
from noiseda.training.loop import train

PRESETS = {
    # The small CPU preset the authors' code was measured at: U-Net-T; diffusion base 32, multipliers 1,2,2,2,
    # one res-block per level (1.9M parameters); batch 8, 64 px; 600 steps; ramp in the run.
    "cpu-small": ["net.name=unet-t", "diffusion.base_width=32", "diffusion.channel_mults=[1,2,2,2]",
                  "diffusion.layers_per_block=1", "data.patch_size=64", "train.batch_size=8",
                  "train.steps=600", "method.lambda_ramp_steps=300"],
    # The paper-size nets: U-Net-S and the 62.6M diffusion net; batch 16 of 128 px.
    "gpu-paper": ["net.name=unet-s", "data.patch_size=128", "train.batch_size=16", "train.steps=800",
                  "method.lambda_ramp_steps=400"],
}


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": torch.get_num_threads(), "noiseda": __version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def common_settings(data: Path, preset: str, steps: int | None, extra: list[str]) -> list[str]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return PRESETS[preset] + [
        f"data.clean={data / 'clean'}",
        f"data.real={data / 'denoise' / 'real-unlabeled'}",
        "train.seed=0", "train.log_every=20", "train.checkpoint_every=100000", "train.val_every=100000",
        "data.val_pairs=null", "data.cache=memory", f"data.workers={0 if device == 'cpu' else 8}",
    ] + ([f"train.steps={steps}"] if steps else []) + extra


def data_wait(run: Path) -> float | None:
    """Mean fraction of time the run waited for data, over its log intervals after the first
    (the first holds the loader workers' start-up)."""
    logs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    waits = [r["train/data_wait"] for r in logs if "train/data_wait" in r][1:]
    return sum(waits) / len(waits) if waits else None


def run_methods(data: Path, common: list[str], methods: list[str], runs: Path) -> tuple[dict, dict]:
    """Train each method with the same settings (resuming a run folder that has checkpoints),
    score the EMA restorer on the real pairs; returns ({method: row}, input row)."""
    test = data / "denoise" / "real-val" / "polyu"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows, input_row = {}, None
    for method in methods:
        cfg = load_config("denoise", common + [f"method.name={method}"])
        run = runs / method
        tic = time.perf_counter()
        train(cfg, run, resume=(run / "checkpoints").is_dir(), progress=False)
        seconds = time.perf_counter() - tic
        net, spec = load_restorer(run / "final", device)
        with torch.inference_mode():
            s = summarize(score_pairs(net, spec, str(test), False, device, tile=None))
        extra = {}
        if device == "cuda":  # what bf16 restoring costs in quality, on the same trained net
            with torch.inference_mode():
                fast = summarize(score_pairs(for_inference(net, device, "bf16"), spec, str(test), False, device, None))
            extra = {"psnr_bf16_restore": fast["psnr"], "ssim_bf16_restore": fast["ssim"]}
        input_row = {"psnr": s["input_psnr"], "ssim": s["input_ssim"], "images": s["images"]}
        rows[method] = {"psnr": s["psnr"], "ssim": s["ssim"], "train_seconds": seconds,
                        "steps": cfg.train.steps, "steps_per_s": cfg.train.steps / seconds,
                        "data_wait": data_wait(run), **extra, "config": config_to_dict(cfg)}
        print(f"{method}: PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}, {seconds:.0f} s", flush=True)
    return rows, input_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    ap.add_argument("--steps", type=int, help="override the preset's steps")
    ap.add_argument("--methods", nargs="+", default=["vanilla", "noise-da"])
    ap.add_argument("--runs", default="runs/quality", help="where the training runs go")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--out", required=True, help="JSON result path")
    args = ap.parse_args()

    data = Path(args.data)
    common = common_settings(data, args.preset, args.steps, args.set)
    methods, input_row = run_methods(data, common, args.methods, Path(args.runs) / args.preset)
    result = {"benchmark": "quality", "preset": args.preset, "machine": machine(),
              "test_set": str(data / "denoise" / "real-val" / "polyu"),
              "weights_scored": "EMA of the restorer (decay 0.9999 with warm-up min(d, (1+n)/(10+n)))",
              "methods": methods, "input": input_row}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"input: PSNR {input_row['psnr']:.2f} dB; written {args.out}")


if __name__ == "__main__":
    main()
