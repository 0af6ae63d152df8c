"""Where does the noise loss push the restorer? Gradient alignment with the truth.

For a noise-da model (a run's checkpoint), a batch of synthetic training crops and a batch of
crops from real-domain pairs with ground truth, and K draws of what the noise loss draws
(noise levels, noise, channel-shuffling and residual-swapping coins, dropout):

- output space: g = dL_noise/dy for each branch, averaged over the draws (the expected update
  direction), and its cosine with the oracle's gradient, d Charbonnier(y, gt)/dy: positive
  means that descending the noise loss moves the outputs toward their ground truth, 1 that it
  does exactly what supervision on those pairs would do, 0 that it is unrelated to it;
- two control directions, so that a signal which does not point at the truth still says what
  it does: toward the output's own Gaussian blur (smoothing: the gradient y - blur(y)) and
  toward the degraded input (keeping the degradation: y - x);
- the signal-to-noise of the draws: |mean g| / mean |g| (1: every draw agrees; about
  1/sqrt(K): the draws are noise around zero);
- parameter space: the cosine between the restorer's parameter gradient of the noise loss
  through one branch only and that of the oracle loss on the same images, and their norm
  ratio (times lambda: the noise loss's share of a supervised update on those images).

The synthetic branch, whose ground truth the diffusion net is built around, is the sanity row:
its noise gradient should align with the supervised one. Nothing here changes a weight or a
gradient buffer (``torch.autograd.grad`` only) or torch's global random stream.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from noiseda.adapt.base import charbonnier
from noiseda.data.datasets import derive_seed

BLUR_SIGMA = 1.5  # pixels: the "smoothing" control direction, a plain Gaussian blur of the output


def gaussian_blur(x: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders (per channel)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    den = a.norm() * b.norm()
    return float(a @ b / den) if den > 0 else 0.0


def per_image_cosines(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return [cosine(a[i], b[i]) for i in range(a.shape[0])]


def _directions(y: torch.Tensor, x: torch.Tensor, gt: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    """Gradients (in the descent convention) of moving y toward each reference, and of the
    tv-prior control's penalty."""
    from noiseda.adapt.tv_prior import total_variation

    with torch.enable_grad():
        leaf = y.detach().requires_grad_(True)
        (oracle,) = torch.autograd.grad(charbonnier(leaf, gt, eps), leaf)
        (tv,) = torch.autograd.grad(total_variation(leaf, eps), leaf)
    return {"truth": oracle, "smooth": y - gaussian_blur(y), "input": y - x, "tv": tv}


def _branch_reading(mean_g: torch.Tensor, draws: list[torch.Tensor], y: torch.Tensor, x: torch.Tensor,
                    gt: torch.Tensor, eps: float) -> dict:
    dirs = _directions(y, x, gt, eps)
    out = {}
    for name, d in dirs.items():
        out[name] = cosine(mean_g, d)  # pooled over the images
        out[f"{name}_per_image"] = per_image_cosines(mean_g, d)
    # The truth cosine split into each image's mean colour (DC) and the rest (AC): a restorer's
    # parameters see DC through its biases, so it can dominate the parameter-space cosine.
    dc = lambda t: t.mean(dim=(-2, -1), keepdim=True)  # noqa: E731
    out["truth_dc"] = cosine(dc(mean_g), dc(dirs["truth"]))
    out["truth_ac"] = cosine(mean_g - dc(mean_g), dirs["truth"] - dc(dirs["truth"]))
    out["truth_per_draw"] = sum(cosine(g, dirs["truth"]) for g in draws) / len(draws)
    out["snr"] = float(mean_g.double().norm() / (sum(g.double().norm() for g in draws) / len(draws)))
    out["norm_ratio"] = float(mean_g.double().norm() / dirs["truth"].double().norm().clamp_min(1e-30))
    return out


def measure(core, batch: dict[str, torch.Tensor], real_gt: torch.Tensor, draws: int, seed: int = 0,
            lam: Optional[float] = None) -> dict:
    """Alignment readings for a noise-da ``core`` (its ``restorer`` and ``noise_loss``) on
    ``batch`` (syn_in, syn_gt, real[, ref]: model range) whose real images have ground truth
    ``real_gt``. ``lam``: the loss weight to report the parameter-space share at (default: the
    config's ceiling, method.lambda_weight)."""
    if draws < 1:
        raise ValueError("draws must be >= 1")
    eps = core.cfg.method.charbonnier_eps
    lam = core.cfg.method.lambda_weight if lam is None else lam
    x_s, x_r = batch["syn_in"], batch["real"]
    n = x_s.shape[0]
    was_training = core.training
    core.train()  # as training sees it: the diffusion net's dropout is part of each draw
    params = [p for p in core.restorer.parameters() if p.requires_grad]
    try:
        with torch.random.fork_rng(devices=[x_s.device] if x_s.device.type == "cuda" else []), torch.enable_grad():
            restored = core.restorer(torch.cat([x_s, x_r]))
            y = restored.detach()
            grads = []
            for k in range(draws):
                torch.manual_seed(derive_seed(seed, "gradient-probe", k))
                leaf = y.clone().requires_grad_(True)
                noise = core.noise_loss(batch, leaf[:n], leaf[n:])["noise"]
                (g,) = torch.autograd.grad(noise, leaf)
                grads.append(g)
            mean_g = torch.stack(grads).mean(0)
            syn = _branch_reading(mean_g[:n], [g[:n] for g in grads], y[:n], x_s, batch["syn_gt"], eps)
            real = _branch_reading(mean_g[n:], [g[n:] for g in grads], y[n:], x_r, real_gt, eps)
            # Parameter space: J^T g through one branch at a time (linear in g, so the draw mean
            # of the parameter gradients is J^T of the mean output gradient).
            d_s, d_r = _directions(y[:n], x_s, batch["syn_gt"], eps), _directions(y[n:], x_r, real_gt, eps)
            oracle = torch.cat([d_s["truth"], d_r["truth"]])

            def through(g: torch.Tensor, part: slice) -> torch.Tensor:
                mask = torch.zeros_like(g)
                mask[part] = g[part]
                gs = torch.autograd.grad(restored, params, grad_outputs=mask, retain_graph=True, allow_unused=True)
                return torch.cat([(z if z is not None else torch.zeros_like(p)).flatten() for z, p in zip(gs, params)])

            for reading, part in ((syn, slice(0, n)), (real, slice(n, 2 * n))):
                g_noise, g_oracle = through(mean_g, part), through(oracle, part)
                reading["param_truth"] = cosine(g_noise, g_oracle)
                reading["param_ratio"] = float(g_noise.double().norm() / g_oracle.double().norm().clamp_min(1e-30))
                reading["param_share_at_lambda"] = lam * reading["param_ratio"]
            # The tv-prior control's pull on the real branch, per unit of its weight: the weight
            # at which it matches noise-da's strength is param_share_at_lambda / tv_param_ratio.
            g_tv = through(torch.cat([torch.zeros_like(d_s["tv"]), d_r["tv"]]), slice(n, 2 * n))
            g_oracle = through(oracle, slice(n, 2 * n))
            real["tv_param_ratio"] = float(g_tv.double().norm() / g_oracle.double().norm().clamp_min(1e-30))
    finally:
        core.train(was_training)
    return {"draws": draws, "images": n, "lambda": lam, "synthetic": syn, "real": real}


SUMMARY_KEYS = ("truth", "truth_dc", "truth_ac", "smooth", "input", "tv", "snr", "param_truth",
                "param_share_at_lambda")


def log_values(reading: dict) -> dict[str, float]:
    """The scalars the shortcut monitor logs (metrics.jsonl / TensorBoard)."""
    return {f"align/{branch[:4]}_{key}": reading[branch][key]
            for branch in ("real", "synthetic") for key in SUMMARY_KEYS}


# --- `noiseda probe-gradient`: the readings above for runs' checkpoints, as JSON, CSV and a figure ---

def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def real_crops(pairs: str, size: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` aligned crops (input, target) of ``size`` px from a pairs folder (see crops)."""
    from noiseda.data.datasets import load_pairs, load_tensor
    from noiseda.errors import NoisedaError

    found = load_pairs(pairs, "--pairs")
    if not found:
        raise NoisedaError(f"--pairs {pairs}: no image pairs")
    images = [(x.name, load_tensor(x), load_tensor(y)) for x, y in found[:count]]
    return crops(images, size, count, seed, "--pairs")


def crops(images: list[tuple[str, torch.Tensor, torch.Tensor]], size: int, count: int, seed: int,
          what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` aligned crops of ``size`` px from (name, input, target) images, cycling through
    them; window positions are seeded, so every run and checkpoint sees the same crops."""
    from noiseda.data.datasets import generator
    from noiseda.errors import NoisedaError

    xs, ys = [], []
    for i in range(count):
        name, x, y = images[i % len(images)]
        if x.shape != y.shape:
            raise NoisedaError(f"{what}: size mismatch in pair {name}: {tuple(x.shape)} vs {tuple(y.shape)}")
        h, w = x.shape[1:]
        if min(h, w) < size:
            raise NoisedaError(f"{what}: {name} is {w}x{h}, smaller than the {size} px crops the run trains on")
        g = generator(seed, "gradient-crop", i)
        top = int(torch.randint(h - size + 1, (1,), generator=g))
        left = int(torch.randint(w - size + 1, (1,), generator=g))
        xs.append(x[:, top:top + size, left:left + size])
        ys.append(y[:, top:top + size, left:left + size])
    return torch.stack(xs), torch.stack(ys)


def _run_checkpoints(run, steps: str):
    from noiseda.checkpoint import checkpoint_step, list_checkpoints
    from noiseda.errors import NoisedaError

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
    instead of the run's method.t_range (which noise levels carry the signal?)."""
    import json
    from pathlib import Path

    from tqdm import tqdm

    from noiseda.adapt import build_method
    from noiseda.checkpoint import load_checkpoint
    from noiseda.config import load_config
    from noiseda.data.io import write_atomic
    from noiseda.data.setup import build_samples, device_degradation
    from noiseda.errors import NoisedaError
    from noiseda.infer import to_model_range
    from noiseda.monitor import PROBE_BASE, probe_batch
    from noiseda.nets import build_net
    from noiseda.train import net_kwargs

    out = Path(out)
    if images < 1 or draws < 2:
        raise NoisedaError(f"--images >= 1 and --draws >= 2 expected, got {images} and {draws}")
    if out.exists() and not out.is_dir():
        raise NoisedaError(f"--out {out} is a file; choose a folder")
    if not pairs:
        raise NoisedaError("probe-gradient needs at least one --pairs NAME=FOLDER of real-domain pairs")
    device = _device()
    plan = []
    for run in map(Path, runs):  # check every run before the first measurement
        if not (run / "config.yaml").is_file():
            raise NoisedaError(f"--run {run}: not a run folder (no config.yaml)")
        cfg = load_config(str(run / "config.yaml"), [f"method.t_range=[{t_range[0]},{t_range[1]}]"] if t_range else [])
        if cfg.method.name not in ("noise-da", "noise-da-ex"):
            raise NoisedaError(f"--run {run}: a {cfg.method.name} run has no noise loss (give noise-da runs)")
        plan.append((run, cfg, _run_checkpoints(run, steps)))
    rows = []
    todo = sum(len(c) for _, _, c in plan) * len(pairs)
    bar = tqdm(total=todo, disable=not progress, desc="probe-gradient", unit="reading")
    for run, cfg, checkpoints in plan:
        torch.manual_seed(cfg.train.seed)
        core = build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg))).to(device)
        samples = build_samples(cfg, True, core.needs_reference, progress=False)
        vr = cfg.data.value_range
        # Synthetic crops the training stream never drew (and not the shortcut monitor's either).
        base = probe_batch(samples, seed, device_degradation(cfg), device, lambda v: to_model_range(v, vr),
                           images, first=PROBE_BASE + 1_000_000)
        for ckpt_path in checkpoints:
            ckpt = load_checkpoint(ckpt_path)
            core.load_state_dict(ckpt["model"])
            step = ckpt["state"]["step"]
            lam = ckpt["state"].get("lambda")  # lambda as training used it at this step
            for name, folder in pairs.items():
                x, y = real_crops(folder, cfg.data.patch_size, images, seed)
                batch = dict(base, real=to_model_range(x.to(device), vr))
                reading = measure(core, batch, to_model_range(y.to(device), vr), draws, seed)
                rows.append({"run": str(run), "seed": cfg.train.seed, "step": step, "lambda_at_step": lam,
                             "t_range": list(cfg.method.t_range), "pairs": name, **reading})
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
    from noiseda.stats import t_interval

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
    from noiseda.plots import pyplot, save_figure

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
