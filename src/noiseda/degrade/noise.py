"""Noise models: the synthetic AWGN of the paper and simulated real camera noise."""

from __future__ import annotations

import math

import torch

from noiseda.degrade.registry import DEGRADATIONS
from noiseda.degrade.ops import (
    batched, bilinear_demosaic, jpeg, linear_to_srgb, mosaic, normal, per_sample, srgb_to_linear, uniform,
)


@DEGRADATIONS.register("awgn")
@batched
def awgn(img: torch.Tensor, g: torch.Generator, sigma_range=(0.0, 75.0)) -> torch.Tensor:
    """Additive white Gaussian noise, sigma ~ U[lo, hi] / 255 per image, not clipped (the paper's
    synthetic domain: it models nothing real, which is why real noise needs adaptation)."""
    sigma = uniform(g, img.shape[0], *sigma_range, img.device) / 255.0
    return img + per_sample(sigma) * normal(g, img.shape, img)


@DEGRADATIONS.register("poisson-gaussian")
@batched
def poisson_gaussian(img: torch.Tensor, g: torch.Generator, shot_range=(0.0005, 0.01),
                     read_range=(1e-5, 1e-3)) -> torch.Tensor:
    """Signal-dependent sensor noise in the image's own domain: variance = shot * x + read
    (photon shot noise plus read noise, in its usual Gaussian approximation), white and
    independent per channel, not clipped."""
    b = img.shape[0]
    shot, read = uniform(g, b, *shot_range, img.device), uniform(g, b, *read_range, img.device)
    std = torch.sqrt(per_sample(shot) * img.clamp(min=0) + per_sample(read))
    return img + std * normal(g, img.shape, img)


@DEGRADATIONS.register("camera-noise")
@batched
def camera_noise(img: torch.Tensor, g: torch.Generator, shot_range=(0.002, 0.012), read_range=(0.0005, 0.003),
                 jpeg_range=(75, 95)) -> torch.Tensor:
    """A small camera pipeline: sRGB -> linear, Bayer mosaic, signal-dependent shot noise plus
    read noise (Poisson-Gaussian), bilinear demosaic, gamma, JPEG. Demosaicking makes the noise
    spatially and cross-channel correlated and gamma makes it brightness dependent, as in real
    sRGB photos; AWGN training covers neither."""
    b, dev = img.shape[0], img.device
    shot, read = uniform(g, b, *shot_range, dev), uniform(g, b, *read_range, dev)
    quality = uniform(g, b, *jpeg_range)
    raw = mosaic(srgb_to_linear(img))
    std = torch.sqrt(per_sample(shot) * raw.clamp(min=0) + per_sample(read))
    noisy = raw + std * normal(g, raw.shape, raw)
    return jpeg(linear_to_srgb(bilinear_demosaic(noisy)), quality)


def random_ccms(g: torch.Generator, n: int) -> torch.Tensor:
    """Plausible camera-to-sRGB colour matrices (n x 3 x 3): rows sum to one, strong diagonal,
    negative cross-talk terms, as measured sensor matrices look."""
    off = -(0.1 + 0.3 * torch.rand(n, 3, 3, generator=g, device=g.device).cpu())
    off = off * (1 - torch.eye(3))
    return off + torch.diag_embed(1 - off.sum(-1))


@DEGRADATIONS.register("camera-pipeline")
@batched
def camera_pipeline(img: torch.Tensor, g: torch.Generator, log_shot_range=(math.log(1e-4), math.log(1.2e-2)),
                    jpeg_range=(60, 95)) -> torch.Tensor:
    """Real sensor noise through a full camera pipeline (the "unprocessing" model of Brooks et
    al. 2019): sRGB -> linear (inverse gamma) -> camera colour space (inverse colour matrix) ->
    raw (inverse white balance) -> Bayer mosaic -> shot + read noise whose levels follow the
    ISO gain (read noise tied to shot noise in log space) -> bilinear demosaic -> white balance
    -> colour matrix -> gamma -> JPEG. Noise ends up signal dependent, colour-mixed, spatially
    correlated and compressed, as in phone and DSLR JPEGs."""
    b, dev = img.shape[0], img.device
    ccm = random_ccms(g, b).to(dev, img.dtype)
    wb = torch.stack([uniform(g, b, 1.9, 2.4), torch.ones(b), uniform(g, b, 1.5, 1.9)], 1).to(dev, img.dtype)
    log_shot = uniform(g, b, *log_shot_range)
    log_read = 2.18 * log_shot + 1.2 + 0.26 * torch.randn(b, generator=g, device=g.device).cpu()
    shot, read = log_shot.exp().to(dev), log_read.exp().to(dev)
    quality = uniform(g, b, *jpeg_range)
    lin = srgb_to_linear(img.clamp(0, 1))
    cam = torch.einsum("bij,bjhw->bihw", torch.linalg.inv(ccm), lin)
    raw = mosaic((cam / wb[..., None, None]).clamp(0, 1))
    noisy = raw + torch.sqrt(per_sample(shot) * raw + per_sample(read)) * normal(g, raw.shape, raw)
    rgb = torch.einsum("bij,bjhw->bihw", ccm, bilinear_demosaic(noisy) * wb[..., None, None])
    return jpeg(linear_to_srgb(rgb), quality)
