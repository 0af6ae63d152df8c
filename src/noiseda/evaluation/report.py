"""A run's report: report.md with loss curves (PNG, with matplotlib), validation scores and
sample restorations, written at the end of training or by ``noiseda report RUN``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from noiseda.data.io import write_atomic

CURVES = [("loss/total", "total loss"), ("loss/sup", "supervised (Charbonnier)"), ("loss/noise", "noise loss"),
          ("val/psnr", "validation PSNR (dB)")]


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in records if key in r]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_curves(records: list[dict], path: Path) -> bool:
    """One panel per logged curve; False (nothing written) without matplotlib or data."""
    panels = [(k, label) for k, label in CURVES if any(k in r for r in records)]
    if not panels:
        return False
    from noiseda.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        steps, values = _series(records, key)
        ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3)
        base = next((r["val/input_psnr"] for r in records if "val/input_psnr" in r), None)
        if key == "val/psnr" and base is not None:
            ax.axhline(base, color="grey", linestyle="--", linewidth=1, label="degraded input")
            ax.legend(fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
    save_figure(fig, path, dpi=100)
    return True


def sample_sheet(net, images, value_range, device, path: Path, count: int = 3, crop: int = 128) -> bool:
    """Centre crops of the first validation pairs: input | restored | ground truth."""
    from noiseda.inference.tiling import restore_tensor
    from noiseda.evaluation.sheet import centre_crop, contact_sheet

    if not images:
        return False
    rows = []
    with torch.inference_mode():
        for _, x, y in images[:count]:
            x, y = centre_crop(x, crop), centre_crop(y, crop)
            out = restore_tensor(net, x, value_range, tile=None, device=device).clamp(0, 1)
            rows.append([x, out, y])
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, ["input", "restored (EMA)", "ground truth"], path)
    return True


def _monitor_section(run_dir: Path, records: list[dict]) -> list[str]:
    """noise-da runs: the shortcut monitor's last reading and its real probe images over training."""
    probes = [r for r in records if "probe/real_slot_ratio" in r]
    grids = sorted((run_dir / "monitor").glob("step-*.png"))
    if not probes and not grids:
        return []
    lines = ["", "## Shortcut monitor", ""]
    if probes:
        last = probes[-1]
        lines += ["Diffusion loss on a fixed probe batch with a slot holding the raw input instead of its "
                  "restoration, relative to the loss as trained (1.0: the slot is ignored):", "",
                  "| step | real slot | synthetic slot |", "|---|---|---|"]
        shown = probes if len(probes) <= 8 else probes[:: math.ceil(len(probes) / 8)]
        shown += [] if shown[-1] is last else [last]
        lines += [f"| {r['step']} | {r['probe/real_slot_ratio']:.4f} | {r['probe/syn_slot_ratio']:.4f} |"
                  for r in shown]
    if grids:
        picked = grids if len(grids) <= 6 else [grids[round(i * (len(grids) - 1) / 5)] for i in range(6)]
        lines += ["", "Real probe images, raw and restored, over training:", ""]
        lines += [f"![{p.stem}](monitor/{p.name})" for p in picked]
    return lines


def write_report(run_dir: Path, summary: dict | None = None, net=None, val_images=None, value_range=(0.0, 1.0),
                 device="cpu") -> Path:
    """report.md (+ report/curves.png, report/samples.png) in the run folder."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    folder = run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    has_curves = plot_curves(records, folder / "curves.png")
    has_samples = net is not None and sample_sheet(net, val_images, value_range, device, folder / "samples.png")
    info = next((r for r in records if "info/params_restorer" in r), {})
    last_train = next((r for r in reversed(records) if "loss/total" in r), {})
    vals = [r for r in records if "val/psnr" in r]
    lines = [f"# Run report: {run_dir.name}", ""]
    if summary:
        lines += [f"- steps: {summary.get('steps')}", f"- non-finite steps skipped: {summary.get('nonfinite_skipped', 0)}"]
    if info:
        lines += [f"- restorer parameters: {info['info/params_restorer']:,}",
                  f"- lambda ramp: {info.get('info/lambda_ramp_steps')} steps; processes: {info.get('info/world_size')}"]
    if last_train:
        speed = last_train.get("train/steps_per_s")
        lines.append(f"- last logged losses (step {last_train['step']}): " + ", ".join(
            f"{k.split('/')[1]} {v:.4g}" for k, v in last_train.items() if k.startswith("loss/")))
        if speed:
            lines.append(f"- speed at the end: {speed:.2f} steps/s")
    if vals:
        best = max(vals, key=lambda r: r["val/psnr"])
        lines += ["", "| validation | step | PSNR (dB) | SSIM |", "|---|---|---|---|",
                  f"| best | {best['step']} | {best['val/psnr']:.2f} | {best.get('val/ssim', float('nan')):.4f} |",
                  f"| last | {vals[-1]['step']} | {vals[-1]['val/psnr']:.2f} | {vals[-1].get('val/ssim', float('nan')):.4f} |"]
        last = vals[-1]
        if "val/input_psnr" in last:
            lines.append(f"| degraded input | | {last['val/input_psnr']:.2f} | {last['val/input_ssim']:.4f} |")
            if last["val/psnr"] < last["val/input_psnr"]:
                lines += ["", f"**The restorer scores below the degraded inputs at the last validation "
                          f"({last['val/psnr']:.2f} vs {last['val/input_psnr']:.2f} dB): training made these "
                          "images worse.**"]
    else:
        lines += ["", "No validation pairs were given (data.val_pairs), so there are no validation scores."]
    if has_curves:
        lines += ["", "![curves](report/curves.png)"]
    elif records:
        lines += ["", "(No curves: matplotlib is missing; reinstall noiseda.)"]
    if has_samples:
        lines += ["", "![samples](report/samples.png)"]
    lines += _monitor_section(run_dir, records)
    path = run_dir / "report.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
