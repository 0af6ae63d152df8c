"""`noiseda probe-gradient`: the gradient alignment of methods/noise_da/alignment.py read over a
run's checkpoints and one or more sets of real pairs, as a CSV, a summary and a figure.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from noiseda.config import load_config
from noiseda.data.files import load_pairs
from noiseda.data.store import load_tensor
from noiseda.data.io import write_atomic
from noiseda.data.setup import build_samples, device_degradation
from noiseda.device import default_device
from noiseda.errors import NoisedaError
from noiseda.inference.export import net_kwargs
from noiseda.inference.tiling import to_model_range
from noiseda.methods import build_method, method_class
from noiseda.methods.noise_da.alignment import BLUR_SIGMA, SUMMARY_KEYS, crops, measure
from noiseda.methods.noise_da.method import NoiseDA
from noiseda.methods.noise_da.monitor import PROBE_BASE, fixed_batch
from noiseda.nets import build_net
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint, checkpoint_step


def real_crops(pairs: str, size: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` aligned crops (input, target) of ``size`` px from a pairs folder (see crops)."""
    found = load_pairs(pairs, "--pairs")
    if not found:
        raise NoisedaError(f"--pairs {pairs}: no image pairs")
    images = [(x.name, load_tensor(x), load_tensor(y)) for x, y in found[:count]]
    return crops(images, size, count, seed, "--pairs")


def _run_checkpoints(run, steps: str):

    found = list_checkpoints(run)
    if not found:
        raise NoisedaError(f"--run {run}: no complete checkpoint")
    if steps == "all":
        return found
    if steps == "last":
        return found[-1:]
    by_step = {checkpoint_step(p): p for p in found}
    try:
        wanted = [int(s) for s in steps.split(",")]
    except ValueError:
        raise NoisedaError(f"--steps: expected all, last or steps such as 500,1000, got {steps!r}") from None
    missing = [s for s in wanted if s not in by_step]
    if missing:
        raise NoisedaError(f"--run {run}: no checkpoint at step {missing[0]} (it has {sorted(by_step)})")
    return [by_step[s] for s in wanted]


def probe_gradient(runs, pairs: dict[str, str], out, steps: str = "all", images: int = 8, draws: int = 32,
                   seed: int = 0, t_range: Optional[list[int]] = None, progress: bool = True) -> dict:
    """Readings for every (run, checkpoint, pairs set); writes gradient.json, gradient.csv and
    gradient.png into ``out``. ``t_range``: draw the diffusion timesteps from this range
    instead of the run's method.options.noise-da.t_range (which noise levels carry the signal?)."""
    out = Path(out)
    if images < 1 or draws < 2:
        raise NoisedaError(f"--images >= 1 and --draws >= 2 expected, got {images} and {draws}")
    if out.exists() and not out.is_dir():
        raise NoisedaError(f"--out {out} is a file; choose a folder")
    if not pairs:
        raise NoisedaError("probe-gradient needs at least one --pairs NAME=FOLDER of real-domain pairs")
    device = default_device()
    plan = []
    for run in map(Path, runs):  # check every run before the first measurement
        if not (run / "config.yaml").is_file():
            raise NoisedaError(f"--run {run}: not a run folder (no config.yaml)")
        cfg = load_config(str(run / "config.yaml"), [f"method.options.noise-da.t_range=[{t_range[0]},{t_range[1]}]"] if t_range else [])
        if not issubclass(method_class(cfg.method.name), NoiseDA):
            raise NoisedaError(f"--run {run}: a {cfg.method.name} run has no noise loss (give noise-da runs)")
        plan.append((run, cfg, _run_checkpoints(run, steps)))
    rows = []
    todo = sum(len(c) for _, _, c in plan) * len(pairs)
    bar = tqdm(total=todo, disable=not progress, desc="probe-gradient", unit="reading")
    for run, cfg, checkpoints in plan:
        torch.manual_seed(cfg.train.seed)
        core = build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg))).to(device)
        samples = build_samples(cfg, True, "reference" in core.streams, progress=False)
        vr = cfg.data.value_range
        # Synthetic crops the training stream never drew (and not the shortcut monitor's either).
        base = fixed_batch(samples, seed, device_degradation(cfg), device, lambda v: to_model_range(v, vr),
                           images, first=PROBE_BASE + 1_000_000)
        for ckpt_path in checkpoints:
            ckpt = load_checkpoint(ckpt_path)
            core.load_state_dict(ckpt["model"])
            step = ckpt["state"]["step"]
            lam = ckpt["state"].get("lambda")  # lambda as training used it at this step
            for name, folder in pairs.items():
                x, y = real_crops(folder, cfg.data.patch_size, images, seed)
                batch = dataclasses.replace(base, real=to_model_range(x.to(device), vr))
                reading = measure(core, batch, to_model_range(y.to(device), vr), draws, seed)
                rows.append({"run": str(run), "seed": cfg.train.seed, "step": step, "lambda_at_step": lam,
                             "t_range": list(core.options.t_range), "pairs": name, **reading})
                bar.update(1)
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    result = {"probe": "gradient-alignment", "images": images, "draws": draws, "seed": seed,
              "pairs": dict(pairs), "blur_sigma": BLUR_SIGMA, "rows": rows, "summary": summarize(rows)}
    write_atomic(out / "gradient.json", json.dumps(result, indent=1))
    write_atomic(out / "gradient.csv", _csv(rows))
    result["figure"] = figure(rows, out / "gradient.png")
    return result


def summarize(rows: list[dict]) -> list[dict]:
    """Per (pairs set, step): mean over runs of each pooled reading, with a 95% t-interval."""
    from noiseda.evaluation.stats import t_interval

    groups: dict = {}
    for r in rows:
        groups.setdefault((r["pairs"], r["step"]), []).append(r)
    out = []
    for (pairs, step), rs in sorted(groups.items()):
        entry = {"pairs": pairs, "step": step, "runs": len(rs)}
        for branch in ("real", "synthetic"):
            for key in SUMMARY_KEYS:
                values = [r[branch][key] for r in rs]
                entry[f"{branch}_{key}"] = sum(values) / len(values)
                ci = t_interval(values) if len(values) > 1 else None
                entry[f"{branch}_{key}_ci"] = list(ci) if ci else None
        entry["real_tv_param_ratio"] = sum(r["real"]["tv_param_ratio"] for r in rs) / len(rs)
        out.append(entry)
    return out


def _csv(rows: list[dict]) -> str:
    import csv
    import io

    fields = ["run", "seed", "step", "lambda_at_step", "pairs"] + [
        f"{b}_{k}" for b in ("real", "synthetic") for k in SUMMARY_KEYS + ("truth_per_draw", "norm_ratio")] + [
        "real_tv_param_ratio"]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({**{k: r[k] for k in fields[:5]},
                    **{f"{b}_{k}": r[b][k] for b in ("real", "synthetic") for k in SUMMARY_KEYS + ("truth_per_draw", "norm_ratio")},
                    "real_tv_param_ratio": r["real"]["tv_param_ratio"]})
    return buf.getvalue()


def reading_text(summary: list[dict]) -> list[str]:
    """One line per pairs set at its last step: what the real-branch signal points at."""
    last: dict = {}
    for e in summary:
        last[e["pairs"]] = e
    lines = []
    for pairs, e in last.items():
        lines.append(f"{pairs}, step {e['step']} ({e['runs']} run(s)): real branch cosine with the truth "
                     f"{e['real_truth']:+.3f}, with smoothing {e['real_smooth']:+.3f}, with the input "
                     f"{e['real_input']:+.3f}, draw SNR {e['real_snr']:.2f}; synthetic branch with its truth "
                     f"{e['synthetic_truth']:+.3f}")
    return lines


def figure(rows: list[dict], path) -> bool:
    """One panel per pairs set: cosines against the training step, mean over runs, with the
    runs' range as a band."""
    from noiseda.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return False
    sets = list(dict.fromkeys(r["pairs"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False, sharey=True)
    lines = (("real", "truth", "real: toward the truth", "C0", "-"),
             ("real", "smooth", "real: toward its blur", "C1", "--"),
             ("real", "input", "real: toward the input", "C2", ":"),
             ("synthetic", "truth", "synthetic: toward the truth", "C3", "-"))
    for ax, name in zip(axes[0], sets):
        mine = [r for r in rows if r["pairs"] == name]
        steps = sorted({r["step"] for r in mine})
        for branch, key, label, color, style in lines:
            vals = [[r[branch][key] for r in mine if r["step"] == s] for s in steps]
            mean = [sum(v) / len(v) for v in vals]
            ax.plot(steps, mean, color=color, linestyle=style, marker="o", ms=3, label=label)
            ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], color=color, alpha=0.15)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"real pairs: {name}", fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cosine with the noise loss's gradient")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    save_figure(fig, path, rect=(0, 0.1, 1, 1))
    return True
