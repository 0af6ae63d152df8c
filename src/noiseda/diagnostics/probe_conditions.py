"""`noiseda probe-conditions`: is the diffusion loss sensitive to the condition's quality?

The paper's Fig. 1(a), on the user's own data: a conditional diffusion net (trained here on
the config's clean images with the clean image as its condition, or taken from a noise-da
run) predicts the noise of noisy clean images while its condition is the same image corrupted
with AWGN of increasing sigma (crops of the training images that training itself never drew).
If its loss grows with sigma, the loss can tell a good
restoration from a bad one, which is what lets it teach the restorer; if it stays flat, it
cannot. Every sigma sees the same images, noise levels and noise (a paired curve).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from noiseda.config import Config
from noiseda.device import default_device
from noiseda.errors import NoisedaError
from noiseda.evaluation.stats import sample_sd
from noiseda.methods.noise_da.method import noise_da_options
from noiseda.methods.noise_da.monitor import PROBE_BASE

DEFAULT_SIGMAS = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80)


def train_conditional(cfg: Config, steps: int, progress: bool = True):
    """A diffusion net trained alone, its two condition slots holding the clean target."""
    from tqdm import tqdm

    from noiseda.data.samples import StepBatches, derive_seed
    from noiseda.data.setup import build_samples
    from noiseda.inference.tiling import to_model_range
    from noiseda.methods.noise_da.diffusion import GammaSchedule, NoisePredictor

    samples = build_samples(cfg, needs_real=False, needs_reference=False, progress=progress)
    t_range = noise_da_options(cfg).t_range
    torch.manual_seed(cfg.train.seed)
    device = default_device()
    net, schedule = NoisePredictor(cfg.diffusion).to(device), GammaSchedule(cfg.diffusion)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.diffusion_lr or cfg.train.lr,
                           betas=tuple(cfg.train.adam_betas), eps=cfg.train.adam_eps)
    net.train()
    batches = StepBatches(0, cfg.train.batch_size, steps=steps)
    for step, idx in enumerate(tqdm(batches, disable=not progress, desc="diffusion net", unit="step"), 1):
        torch.manual_seed(derive_seed(cfg.train.seed, "probe-train", step))
        y = to_model_range(torch.stack([samples[i]["clean"] for i in idx]).to(device), cfg.data.value_range)
        gamma = schedule.sample(y.shape[0], tuple(t_range), y.device)
        eps = torch.randn_like(y)
        loss = F.mse_loss(net(schedule.noise(y, gamma, eps), y, y, gamma), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval(), schedule, samples


def load_run_diffusion(run: Path):
    """The diffusion net of a noise-da run's last checkpoint, with the run's config."""
    from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
    from noiseda.config import load_config
    from noiseda.data.setup import build_samples
    from noiseda.methods.noise_da.diffusion import GammaSchedule, NoisePredictor

    if not (run / "config.yaml").is_file():
        raise NoisedaError(f"--run {run}: not a run folder (no config.yaml)")
    cfg = load_config(str(run / "config.yaml"))
    checkpoints = list_checkpoints(run)
    if not checkpoints:
        raise NoisedaError(f"--run {run}: no complete checkpoint")
    state = {k[len("diffusion."):]: v for k, v in load_checkpoint(checkpoints[-1])["model"].items()
             if k.startswith("diffusion.")}
    if not state:
        raise NoisedaError(f"--run {run}: a {cfg.method.name} run has no diffusion net (train noise-da)")
    net = NoisePredictor(cfg.diffusion)
    net.load_state_dict(state)
    return cfg, net.to(default_device()).eval(), GammaSchedule(cfg.diffusion), build_samples(cfg, False, False)


@torch.no_grad()
def condition_curve(net, schedule, images: torch.Tensor, sigmas: Sequence[float], t_range, value_range,
                    seed: int = 0, repeats: int = 4) -> list[dict]:
    """Per sigma: the diffusion loss (mean and sd over ``repeats`` draws of noise level, noise
    and condition noise, the same draws for every sigma) with both slots holding the target
    corrupted by AWGN of that sigma (in 0-255 units of the images' [0, 1] range)."""
    from noiseda.inference.tiling import to_model_range

    y = to_model_range(images, value_range)
    scale = (value_range[1] - value_range[0]) / 255.0
    g = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(repeats):  # drawn on the CPU: the same curve on any device
        gamma = schedule.sample(y.shape[0], tuple(t_range), y.device, generator=g)
        draws.append((gamma, torch.randn(y.shape, generator=g).to(y.device),
                      torch.randn(y.shape, generator=g).to(y.device)))
    rows = []
    for sigma in sigmas:
        losses = []
        for gamma, eps, noise in draws:
            cond = y + sigma * scale * noise
            pred = net(schedule.noise(y, gamma, eps), cond, cond, gamma)
            losses.append(F.mse_loss(pred.float(), eps).item())
        mean = sum(losses) / len(losses)
        rows.append({"sigma": float(sigma), "mse": mean, "sd": sample_sd(losses) or 0.0})
    return rows


def reading(rows: list[dict]) -> str:
    first, last = rows[0], rows[-1]
    ratio = last["mse"] / max(first["mse"], 1e-12)
    rising = all(b["mse"] >= a["mse"] for a, b in zip(rows, rows[1:]))
    shape = "rises at every step" if rising else "does not rise at every step"
    return (f"loss {first['mse']:.4f} at sigma {first['sigma']:g} -> {last['mse']:.4f} at sigma {last['sigma']:g} "
            f"({ratio:.2f}x); the curve {shape}. A loss that grows with the condition's noise can tell a "
            "good restoration from a bad one; a flat one cannot teach the restorer.")


def probe_conditions(cfg: Optional[Config], out: str | Path, run: Optional[str] = None, steps: Optional[int] = None,
                     sigmas: Optional[Sequence[float]] = None, images: int = 8, progress: bool = True) -> dict:
    """``steps`` (default 300) trains the probe's own diffusion net; with ``run`` there is none to train."""
    from noiseda.data.io import write_atomic

    out = Path(out)
    sigmas = list(DEFAULT_SIGMAS if sigmas is None else sigmas)
    if run and steps is not None:
        raise NoisedaError("--steps trains the probe's own diffusion net; with --run there is none to train")
    steps = 300 if steps is None else steps
    if steps < 1:
        raise NoisedaError(f"--steps: expected >= 1, got {steps}")
    if images < 1:
        raise NoisedaError(f"--images: expected >= 1, got {images}")
    if not sigmas or min(sigmas) < 0:
        raise NoisedaError(f"--sigmas: expected noise levels >= 0, got {list(sigmas)}")
    if out.exists() and not out.is_dir():
        raise NoisedaError(f"--out {out} is a file; choose a folder")
    if run:
        cfg, net, schedule, samples = load_run_diffusion(Path(run))
        source = f"the diffusion net of {run}"
    else:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        net, schedule, samples = train_conditional(cfg, steps, progress)
        source = f"a diffusion net trained {steps} steps with clean conditions"
    # crops and flips the training stream never drew (of its images)
    crops = torch.stack([samples[PROBE_BASE + k]["clean"] for k in range(images)]).to(default_device())
    t_range = noise_da_options(cfg).t_range
    rows = condition_curve(net, schedule, crops, sorted(sigmas), t_range, cfg.data.value_range,
                           seed=cfg.train.seed)
    text = reading(rows)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["sigma", "mse", "sd"])
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "conditions.csv", buf.getvalue())
    write_atomic(out / "conditions.json", json.dumps({"source": source, "images": images,
                                                      "t_range": list(t_range), "rows": rows,
                                                      "reading": text}, indent=1))
    figure = _figure(rows, source, out / "conditions.png")
    return {"rows": rows, "reading": text, "source": source, "figure": figure}


def _figure(rows: list[dict], source: str, path: Path) -> bool:
    from noiseda.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.4))
    xs = [r["sigma"] for r in rows]
    ax.errorbar(xs, [r["mse"] for r in rows], yerr=[r["sd"] for r in rows], marker="o", capsize=3)
    ax.set_xlabel("AWGN sigma of the condition (0-255)")
    ax.set_ylabel("noise-prediction MSE")
    ax.set_title(source, fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    return True
