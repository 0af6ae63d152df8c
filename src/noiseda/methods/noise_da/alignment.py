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

from noiseda.methods.base import Batch, charbonnier
from noiseda.data.samples import derive_seed

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
    from noiseda.methods.tv_prior import total_variation

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


def measure(core, batch: Batch, real_gt: torch.Tensor, draws: int, seed: int = 0,
            lam: Optional[float] = None) -> dict:
    """Alignment readings for a noise-da ``core`` (its ``restorer`` and ``noise_loss``) on
    ``batch`` (a methods.Batch in the model range) whose real images have ground truth
    ``real_gt``. ``lam``: the loss weight to report the parameter-space share at (default: the
    config's ceiling, method.lambda_weight)."""
    if draws < 1:
        raise ValueError("draws must be >= 1")
    eps = core.cfg.method.charbonnier_eps
    lam = core.cfg.method.lambda_weight if lam is None else lam
    x_s, x_r = batch.synthetic, batch.real
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
            syn = _branch_reading(mean_g[:n], [g[:n] for g in grads], y[:n], x_s, batch.clean, eps)
            real = _branch_reading(mean_g[n:], [g[n:] for g in grads], y[n:], x_r, real_gt, eps)
            # Parameter space: J^T g through one branch at a time (linear in g, so the draw mean
            # of the parameter gradients is J^T of the mean output gradient).
            d_s, d_r = _directions(y[:n], x_s, batch.clean, eps), _directions(y[n:], x_r, real_gt, eps)
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


def crops(images: list[tuple[str, torch.Tensor, torch.Tensor]], size: int, count: int, seed: int,
          what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` aligned crops of ``size`` px from (name, input, target) images, cycling through
    them; window positions are seeded, so every run and checkpoint sees the same crops."""
    from noiseda.data.samples import generator
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
