"""How hard does the noise loss pull the restorer? For a trained noise-da run (its last
checkpoint), on training batches drawn as training draws them: the norm of the restorer's
gradient from the supervised loss, from the noise loss at lambda = 1, their ratio and their
cosine. lambda times the ratio is the noise loss's share of the restorer's update direction.

    python benchmarks/noise_gradient.py runs/sweep-denoise-cpu/runs/noise-da-sim/seed-* \\
        --out benchmarks/results/noise-gradient-denoise-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from quality import machine

from noiseda.methods import Batch, build_method
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
from noiseda.config import config_from_dict
from noiseda.data.samples import StepBatches
from noiseda.data.setup import build_samples
from noiseda.inference.tiling import to_model_range
from noiseda.nets import build_net
from noiseda.inference.export import net_kwargs


def restorer_grad(method, loss: torch.Tensor) -> torch.Tensor:
    method.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return torch.cat([p.grad.flatten() for p in method.restorer.parameters()])


def measure(run: Path, batches: int, first_step: int) -> dict:
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    method = build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg)))
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    method.load_state_dict(ckpt["model"])
    method.train()
    samples = build_samples(cfg, "real" in method.streams, "reference" in method.streams, progress=False)
    loader = DataLoader(samples, batch_sampler=StepBatches(first_step, cfg.train.batch_size, 0, 1,
                                                           first_step + batches))
    rows = []
    for k, batch in enumerate(loader):
        batch = Batch(**{n: to_model_range(v, cfg.data.value_range) for n, v in batch.items()})
        torch.manual_seed(k)
        out = method(batch, 1.0)  # total = sup + 1 * noise (the reference formulation)
        g_sup = restorer_grad(method, out["sup"])
        g_noise = restorer_grad(method, out["total"] - out["sup"])
        rows.append({"sup_norm": g_sup.norm().item(), "noise_norm": g_noise.norm().item(),
                     "ratio": (g_noise.norm() / g_sup.norm()).item(),
                     "cosine": torch.nn.functional.cosine_similarity(g_sup, g_noise, 0).item()})
    return {"run": str(run), "step": ckpt["state"]["step"], "lambda_weight": cfg.method.lambda_weight,
            "median_ratio": statistics.median(r["ratio"] for r in rows),
            "median_cosine": statistics.median(r["cosine"] for r in rows), "batches": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="noise-da run folders")
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--first-step", type=int, default=100000, help="draw batches as training would at this step")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    for run in args.runs:
        r = measure(Path(run), args.batches, args.first_step)
        print(f"{run}: step {r['step']}, |d noise| / |d sup| = {r['median_ratio']:.3f} per unit of lambda, "
              f"cosine {r['median_cosine']:+.3f}")
        results.append(r)
    Path(args.out).write_text(json.dumps({"benchmark": "noise-gradient", "machine": machine(), "runs": results},
                                         indent=1))


if __name__ == "__main__":
    main()
