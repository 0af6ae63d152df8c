"""Batched building blocks of the simulators: per-sample random parameters, colour transfer
functions, per-sample blur kernels and convolution, Bayer mosaics, JPEG.

Images are BxCxHxW on any device. Random draws come from one ``torch.Generator``, on the CPU
or on the images' device; small parameters are drawn first, in a fixed order, so the same
generator state gives the same batch.
"""

from __future__ import annotations

import functools
import io
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def batched(fn):
    """Let a batched simulator also take one CxHxW image; the output keeps the input's dtype."""

    @functools.wraps(fn)
    def wrapper(img: torch.Tensor, g: torch.Generator, **options) -> torch.Tensor:
        single = img.dim() == 3
        out = fn(img[None] if single else img, g, **options).to(img.dtype)
        return out[0] if single else out

    return wrapper


def uniform(g: torch.Generator, n: int, lo: float, hi: float, device=None) -> torch.Tensor:
    """n values ~ U[lo, hi), drawn on the generator's device, returned on ``device``."""
    return (lo + (hi - lo) * torch.rand(n, generator=g, device=g.device)).to(device)


def normal(g: torch.Generator, shape, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=g.device).to(like.device, like.dtype)


def rand(g: torch.Generator, shape, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=g.device).to(like.device, like.dtype)


def per_sample(v: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1), to scale a batch of images."""
    return v.view(-1, 1, 1, 1)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def bayer_masks(h: int, w: int, device=None) -> torch.Tensor:
    """RGGB masks, 3xHxW."""
    m = torch.zeros(3, h, w, device=device)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    return m


def mosaic(rgb: torch.Tensor) -> torch.Tensor:
    """Bx3xHxW -> Bx1xHxW raw Bayer (RGGB) samples."""
    return (rgb * bayer_masks(*rgb.shape[-2:], device=rgb.device)).sum(1, keepdim=True)


def bilinear_demosaic(raw: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW Bayer mosaic -> Bx3xHxW by bilinear interpolation, the simplest camera demosaic."""
    h, w = raw.shape[-2:]
    k_rb = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k_g = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    kernels = torch.stack([k_rb, k_g, k_rb])[:, None].to(raw)
    sampled = bayer_masks(h, w, raw.device).to(raw) * raw
    return F.conv2d(F.pad(sampled, (1, 1, 1, 1), mode="reflect"), kernels, groups=3)


def jpeg(img: torch.Tensor, quality: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    """JPEG round trip (the CPU codec, one image at a time), per-sample quality; CxHxW or BxCxHxW."""
    single = img.dim() == 3
    x = img[None] if single else img
    qualities = torch.as_tensor(quality).round().int().expand(x.shape[0]).tolist()
    out = []
    for im, q in zip(x.detach().float().clamp(0, 1).cpu(), qualities):
        arr = np.round(im.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(q))
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(dec).permute(2, 0, 1))
    y = torch.stack(out).to(img.device, img.dtype)
    return y[0] if single else y


# ---- blur kernels: Bxsize x size, each summing to one ----

def normalise(k: torch.Tensor) -> torch.Tensor:
    return k / k.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12)


def rasterise(points: torch.Tensor, size: int) -> torch.Tensor:
    """Splat paths (B x N x 2, pixel offsets from the centre) bilinearly onto B size x size grids."""
    b = points.shape[0]
    p = points.double() + (size - 1) / 2
    base = p.floor()
    k = torch.zeros(b, size * size, dtype=torch.float64, device=points.device)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = base[..., 0] + dx, base[..., 1] + dy
        weight = (1 - (p[..., 0] - xi).abs()) * (1 - (p[..., 1] - yi).abs())
        inside = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        index = (yi.clamp(0, size - 1) * size + xi.clamp(0, size - 1)).long()
        k.scatter_add_(1, index, torch.where(inside, weight, 0.0))
    return normalise(k.view(b, size, size)).float()


def motion_kernels(lengths: torch.Tensor, angles_deg: torch.Tensor, size: int) -> torch.Tensor:
    """Straight motion paths of ``lengths`` pixels at ``angles_deg``."""
    n = max(int(float(lengths.max()) * 4), 2)
    t = torch.linspace(-0.5, 0.5, n, dtype=torch.float64, device=lengths.device)[None] * lengths.double()[:, None]
    a = torch.deg2rad(angles_deg.double())[:, None]
    return rasterise(torch.stack([t * a.cos(), t * a.sin()], -1), size)


def shake_kernels(g: torch.Generator, extents: torch.Tensor, size: int = 31, steps: int = 64) -> torch.Tensor:
    """Camera shake: continuous random walks with momentum (velocity jitter and a pull back to
    the start), each scaled to its extent in pixels and rasterised, as hand shake during an
    exposure traces it."""
    b = extents.shape[0]
    walk = torch.randn(steps + 1, b, 2, generator=g, device=g.device, dtype=torch.float64).cpu()
    pos, vel = torch.zeros(b, 2, dtype=torch.float64), walk[0]
    pts = []
    for i in range(steps):
        vel = 0.8 * vel + 0.5 * walk[i + 1] - 0.02 * pos
        pos = pos + vel
        pts.append(pos)
    path = torch.stack(pts, 1)  # B x steps x 2
    path = path - path.mean(1, keepdim=True)
    extent = (path.amax(1) - path.amin(1)).amax(1).clamp(min=1e-6)
    scale = extents.double().cpu() / extent
    return rasterise(path * scale[:, None, None], size).to(extents.device)


def defocus_kernels(radii: torch.Tensor, size: int) -> torch.Tensor:
    """Disks (out-of-focus lens apertures) with anti-aliased edges; radius 0 is the identity."""
    c = (size - 1) / 2
    r = torch.arange(size, device=radii.device, dtype=torch.float32) - c
    dist = torch.sqrt(r[None, :, None] ** 2 + r[None, None, :] ** 2)
    return normalise((radii.float().view(-1, 1, 1) + 0.5 - dist).clamp(0, 1))


def convolve(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur BxCxHxW (or CxHxW) with one kernel (k x k) or one per sample (B x k x k),
    reflecting at the borders; one grouped convolution for the whole batch."""
    single = img.dim() == 3
    x = img[None] if single else img
    b, c, h, w = x.shape
    ks = kernels.shape[-1]
    k = kernels.to(x).flip(-1, -2).expand(b, ks, ks)
    weight = k.repeat_interleave(c, 0)[:, None]  # (B*C) x 1 x k x k
    p = ks // 2
    mode = "reflect" if p < min(h, w) else "replicate"
    out = F.conv2d(F.pad(x.reshape(1, b * c, h, w), (p, p, p, p), mode=mode), weight, groups=b * c)
    out = out.view(b, c, h, w)
    return out[0] if single else out
