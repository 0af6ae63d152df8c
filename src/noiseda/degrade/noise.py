"""Noise models: the synthetic AWGN of the paper and a simulated real camera noise."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from noiseda.degrade import DEGRADATIONS


def _uniform(lo: float, hi: float, g: torch.Generator) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


@DEGRADATIONS.register("awgn")
def awgn(img: torch.Tensor, g: torch.Generator, sigma_range=(0.0, 75.0)) -> torch.Tensor:
    """Additive white Gaussian noise, sigma ~ U[lo, hi] / 255 per image, not clipped (the paper's
    synthetic domain: it models nothing real, which is why real noise needs adaptation)."""
    sigma = _uniform(*sigma_range, g) / 255.0
    return img + sigma * torch.randn(img.shape, generator=g)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _bayer_masks(h: int, w: int) -> torch.Tensor:
    """RGGB masks, 3xHxW."""
    m = torch.zeros(3, h, w)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    return m


def bilinear_demosaic(mosaic: torch.Tensor) -> torch.Tensor:
    """Mosaic (HxW) -> RGB by bilinear interpolation, the simplest camera demosaic."""
    h, w = mosaic.shape
    masks = _bayer_masks(h, w)
    k_rb = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k_g = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    kernels = torch.stack([k_rb, k_g, k_rb])[:, None]
    sampled = (masks * mosaic)[None]
    return F.conv2d(F.pad(sampled, (1, 1, 1, 1), mode="reflect"), kernels, groups=3)[0]


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    arr = np.round(img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


@DEGRADATIONS.register("camera-noise")
def camera_noise(
    img: torch.Tensor,
    g: torch.Generator,
    shot_range=(0.002, 0.012),
    read_range=(0.0005, 0.003),
    jpeg_range=(75, 95),
) -> torch.Tensor:
    """A small camera pipeline: sRGB -> linear, Bayer mosaic, signal-dependent shot noise plus
    read noise (Poisson-Gaussian), bilinear demosaic, gamma, JPEG. Demosaicking makes the noise
    spatially and cross-channel correlated and gamma makes it brightness dependent, as in real
    sRGB photos; AWGN training covers neither."""
    c, h, w = img.shape
    lin = srgb_to_linear(img)
    mosaic = (lin * _bayer_masks(h, w)).sum(0)
    shot, read = _uniform(*shot_range, g), _uniform(*read_range, g)
    std = torch.sqrt(shot * mosaic.clamp(min=0) + read)
    noisy = mosaic + std * torch.randn(mosaic.shape, generator=g)
    out = linear_to_srgb(bilinear_demosaic(noisy))
    quality = int(round(_uniform(*jpeg_range, g)))
    return jpeg(out, quality)


@DEGRADATIONS.register("poisson-gaussian")
def poisson_gaussian(img: torch.Tensor, g: torch.Generator, shot_range=(0.0005, 0.01),
                     read_range=(1e-5, 1e-3)) -> torch.Tensor:
    """Signal-dependent sensor noise in the image's own domain: variance = shot * x + read
    (photon shot noise plus read noise, in its usual Gaussian approximation), white and
    independent per channel, not clipped."""
    shot, read = _uniform(*shot_range, g), _uniform(*read_range, g)
    std = torch.sqrt(shot * img.clamp(min=0) + read)
    return img + std * torch.randn(img.shape, generator=g).to(img)


def _random_ccm(g: torch.Generator) -> torch.Tensor:
    """A plausible camera-to-sRGB colour matrix: rows sum to one, strong diagonal, negative
    cross-talk terms, as measured sensor matrices look."""
    off = -(0.1 + 0.3 * torch.rand(3, 3, generator=g))
    off.fill_diagonal_(0)
    return off + torch.diag(1 - off.sum(1))


@DEGRADATIONS.register("camera-pipeline")
def camera_pipeline(img: torch.Tensor, g: torch.Generator, log_shot_range=(math.log(1e-4), math.log(1.2e-2)),
                    jpeg_range=(60, 95)) -> torch.Tensor:
    """Real sensor noise through a full camera pipeline (the "unprocessing" model of Brooks et
    al. 2019): sRGB -> linear (inverse gamma) -> camera colour space (inverse colour matrix) ->
    raw (inverse white balance) -> Bayer mosaic -> shot + read noise whose levels follow the
    ISO gain (read noise tied to shot noise in log space) -> bilinear demosaic -> white balance
    -> colour matrix -> gamma -> JPEG. Noise ends up signal dependent, colour-mixed, spatially
    correlated and compressed, as in phone and DSLR JPEGs."""
    squeeze = img.dim() == 3
    x = img[None] if squeeze else img
    ccm = _random_ccm(g)
    wb = torch.tensor([_uniform(1.9, 2.4, g), 1.0, _uniform(1.5, 1.9, g)])
    log_shot = _uniform(*log_shot_range, g)
    log_read = 2.18 * log_shot + 1.2 + 0.26 * torch.randn((), generator=g).item()
    shot, read = math.exp(log_shot), math.exp(log_read)
    quality = int(round(_uniform(*jpeg_range, g)))
    out = []
    for im in x:
        lin = srgb_to_linear(im.clamp(0, 1))
        cam = torch.einsum("ij,jhw->ihw", torch.linalg.inv(ccm), lin)
        raw = (cam / wb.view(3, 1, 1)).clamp(0, 1)
        h, w = raw.shape[-2:]
        mosaic = (raw * _bayer_masks(h, w)).sum(0)
        noisy = mosaic + torch.sqrt(shot * mosaic + read) * torch.randn(mosaic.shape, generator=g)
        rgb = torch.einsum("ij,jhw->ihw", ccm, bilinear_demosaic(noisy) * wb.view(3, 1, 1))
        out.append(jpeg(linear_to_srgb(rgb), quality))
    y = torch.stack(out).to(img)
    return y[0] if squeeze else y
