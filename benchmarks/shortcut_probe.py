"""Does a trained noise-da run's diffusion net read the real condition? For each run (its last
checkpoint): the shortcut monitor's readings (src/noiseda/monitor.py) on several probe batches
of crops training never drew: the diffusion loss with the real slot holding the raw real input instead of
the restored one, relative to the loss as trained (1.0: the real slot is ignored), and the same
for the synthetic slot.

    python benchmarks/shortcut_probe.py runs/sweep-denoise-cpu/runs/noise-da-*/seed-* \\
        --out benchmarks/results/shortcut-probe-denoise-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml

from quality import machine

from noiseda.methods import build_method
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
from noiseda.config import config_from_dict
from noiseda.data.setup import build_samples, device_degradation
from noiseda.inference.tiling import to_model_range
from noiseda.methods.base import MonitorContext
from noiseda.methods.noise_da.monitor import PROBE_BASE, ShortcutMonitor
from noiseda.nets import build_net
from noiseda.inference.export import net_kwargs


def measure(run: Path, probes: int, images: int) -> dict:
    cfg = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    method = build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg)))
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    method.load_state_dict(ckpt["model"])
    samples = build_samples(cfg, "real" in method.streams, "reference" in method.streams, progress=False)
    rows = []
    for k in range(probes):
        context = MonitorContext(samples=samples, seed=k, degrade_batch=device_degradation(cfg),
                                 device=torch.device("cpu"), to_model=lambda v: to_model_range(v, cfg.data.value_range),
                                 to_image=None, folder=None)
        monitor = ShortcutMonitor(method, context, method.options.t_range, images=images, first=PROBE_BASE + k * images)
        values, _ = monitor(ckpt["state"]["step"], lam_at_ceiling=False)
        rows.append({k.split("/")[1]: v for k, v in values.items()})
    real = [r["real_slot_ratio"] for r in rows]
    return {"run": str(run), "variant": run.parent.name, "seed": run.name, "step": ckpt["state"]["step"],
            "median_real_slot_ratio": statistics.median(real),
            "median_syn_slot_ratio": statistics.median(r["syn_slot_ratio"] for r in rows),
            "real_slot_ratio_above_1": sum(v > 1 for v in real), "probes": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="noise-da run folders")
    ap.add_argument("--probes", type=int, default=8, help="probe batches per run (own crops, levels, noise)")
    ap.add_argument("--images", type=int, default=8, help="crops per probe batch")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    for run in args.runs:
        r = measure(Path(run), args.probes, args.images)
        print(f"{run}: step {r['step']}: real slot raw/restored {r['median_real_slot_ratio']:.4f} "
              f"(> 1 in {r['real_slot_ratio_above_1']}/{args.probes}), synthetic slot "
              f"{r['median_syn_slot_ratio']:.4f}")
        results.append(r)
    Path(args.out).write_text(json.dumps({"benchmark": "shortcut-probe", "machine": machine(), "runs": results},
                                         indent=1))


if __name__ == "__main__":
    main()
