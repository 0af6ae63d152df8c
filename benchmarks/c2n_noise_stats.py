"""Does C2N's generated noise look like the real noise it learned from, more than AWGN does?
(issue 27, C2N's own claim, checked small.)

Real noise is measured on pairs with ground truth from the real domain (noise = noisy - clean).
C2N's noise is its generator's output minus its input, on the same clean images; AWGN's is
Gaussian at the real noise's overall standard deviation (the best AWGN can do). Two statistics,
chosen because they are what separates camera noise from AWGN:
- the noise-level function: the noise's standard deviation in 8 bins of clean intensity (real
  camera noise grows with the signal; AWGN is flat), compared by the mean absolute difference
  over bins, relative to the real noise's mean level;
- the spatial correlation: the correlation of the noise between horizontal and vertical
  neighbours (demosaicking and denoising in the camera make it positive; AWGN has 0), compared
  by the absolute difference.
Lower distance to the real noise is better. Writes a JSON with machine details.

    python benchmarks/c2n_noise_stats.py runs/sweep-recipes-cpu/runs/c2n/seed-0 \\
        --pairs runs/split-denoise/test --out benchmarks/results/c2n-noise-stats-cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
import yaml

from noiseda import __version__
from noiseda.config import config_from_dict
from noiseda.data.store import load_image_pairs
from noiseda.inference.export import net_kwargs
from noiseda.methods import build_method
from noiseda.nets import build_net
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint

BINS = 8


def level_function(noise: torch.Tensor, clean: torch.Tensor) -> list[float]:
    """Standard deviation of the noise per bin of clean intensity (NaN where a bin is empty)."""
    idx = (clean.clamp(0, 1 - 1e-6) * BINS).long()
    return [float(noise[idx == b].std()) if (idx == b).sum() > 1 else float("nan") for b in range(BINS)]


def neighbour_correlation(noise: torch.Tensor) -> float:
    """Mean of the horizontal and vertical lag-1 correlations, over images and channels."""
    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).mean() / (a.std() * b.std() + 1e-12))
    return (corr(noise[..., :, 1:], noise[..., :, :-1]) + corr(noise[..., 1:, :], noise[..., :-1, :])) / 2


def describe(noise: list[torch.Tensor], clean: list[torch.Tensor]) -> dict:
    n, c = torch.cat([x.flatten() for x in noise]), torch.cat([x.flatten() for x in clean])
    return {"std": float(n.std()), "level_function": level_function(n, c),
            "neighbour_correlation": sum(neighbour_correlation(x) for x in noise) / len(noise)}


def distance(a: dict, real: dict) -> dict:
    pairs = [(x, y) for x, y in zip(a["level_function"], real["level_function"]) if x == x and y == y]
    return {"level_function": sum(abs(x - y) for x, y in pairs) / len(pairs) / real["std"],
            "neighbour_correlation": abs(a["neighbour_correlation"] - real["neighbour_correlation"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a finished c2n run folder")
    ap.add_argument("--pairs", required=True, help="real-domain pairs (noisy/ + clean/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run = Path(args.run)
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    method = build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg)))
    method.load_state_dict(load_checkpoint(list_checkpoints(run)[-1])["model"])
    pairs = load_image_pairs(args.pairs, "--pairs")
    torch.manual_seed(args.seed)
    real, generated, awgn, clean = [], [], [], []
    with torch.no_grad():
        for _, x, y in pairs:
            real.append(x - y)
            clean.append(y)
            code = torch.randn(1, method.options.code_size)
            generated.append(method.generator(y[None], code)[1][0])
        sigma = float(torch.cat([r.flatten() for r in real]).std())
        awgn = [sigma * torch.randn(y.shape) for y in clean]
    stats = {"real": describe(real, clean), "c2n": describe(generated, clean), "awgn": describe(awgn, clean)}
    result = {"benchmark": "c2n-noise-stats", "run": str(run), "pairs": args.pairs, "images": len(pairs),
              "stats": stats, "distance_to_real": {k: distance(stats[k], stats["real"]) for k in ("c2n", "awgn")},
              "machine": {"platform": platform.platform(), "torch": torch.__version__, "noiseda": __version__}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for k, d in result["distance_to_real"].items():
        print(f"{k}: level-function distance {d['level_function']:.3f}, neighbour-correlation distance "
              f"{d['neighbour_correlation']:.3f}")


if __name__ == "__main__":
    main()
