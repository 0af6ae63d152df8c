"""Blur: motion kernels, camera-shake trajectories, defocus, and a RealBlur-like low-light blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noiseda.degrade import DEGRADATIONS
from noiseda.degrade.noise import _uniform, jpeg, linear_to_srgb, srgb_to_linear


def _normalise(k: torch.Tensor) -> torch.Tensor:
    return k / k.sum().clamp(min=1e-12)


def _rasterise(points: torch.Tensor, size: int) -> torch.Tensor:
    """Splat 2-D points (N x 2, pixel units around the centre) bilinearly onto a size x size grid."""
    k = torch.zeros(size, size, dtype=torch.float64)
    c = (size - 1) / 2
    for x, y in points.tolist():
        fx, fy = x + c, y + c
        x0, y0 = math.floor(fx), math.floor(fy)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            xi, yi = x0 + dx, y0 + dy
            if 0 <= xi < size and 0 <= yi < size:
                k[yi, xi] += (1 - abs(fx - xi)) * (1 - abs(fy - yi))
    return _normalise(k).float()


def linear_motion_kernel(length: float, angle_deg: float, size: int) -> torch.Tensor:
    """A straight motion path of ``length`` pixels at ``angle_deg``, rasterised to size x size."""
    n = max(int(length * 4), 2)
    t = torch.linspace(-0.5, 0.5, n, dtype=torch.float64) * length
    a = math.radians(angle_deg)
    return _rasterise(torch.stack([t * math.cos(a), t * math.sin(a)], 1), size)


def shake_kernel(g: torch.Generator, size: int = 31, steps: int = 64, max_extent: float = 12.0) -> torch.Tensor:
    """Camera shake: a continuous random walk with momentum (velocity jitter and a pull back to
    the start), scaled to at most ``max_extent`` pixels and rasterised, as hand shake during an
    exposure traces it."""
    pos = torch.zeros(2, dtype=torch.float64)
    vel = torch.randn(2, generator=g, dtype=torch.float64)
    pts = []
    for _ in range(steps):
        vel = 0.8 * vel + 0.5 * torch.randn(2, generator=g, dtype=torch.float64) - 0.02 * pos
        pos = pos + vel
        pts.append(pos.clone())
    path = torch.stack(pts)
    path = path - path.mean(0)
    extent = (path.max(0).values - path.min(0).values).max().clamp(min=1e-6)
    scale = _uniform(0.3, 1.0, g) * max_extent / float(extent)
    return _rasterise(path * scale, size)


def defocus_kernel(radius: float, size: int) -> torch.Tensor:
    """A disk (out-of-focus lens aperture) with anti-aliased edge."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    r = torch.sqrt(xx.float() ** 2 + yy.float() ** 2)
    return _normalise((radius + 0.5 - r).clamp(0, 1))


def convolve(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Blur a CxHxW (or BxCxHxW) image with one kernel, reflecting at the borders."""
    squeeze = img.dim() == 3
    x = img[None] if squeeze else img
    c, ks = x.shape[1], kernel.shape[-1]
    w = kernel.to(x).flip(-1, -2).expand(c, 1, ks, ks)
    p = ks // 2
    mode = "reflect" if p < min(x.shape[-2:]) else "replicate"
    out = F.conv2d(F.pad(x, (p, p, p, p), mode=mode), w, groups=c)
    return out[0] if squeeze else out


@DEGRADATIONS.register("motion-blur")
def motion_blur(img, g, length_range=(5.0, 21.0), size: int = 23) -> torch.Tensor:
    """Uniform linear motion (object or camera panning) at a random angle and length."""
    kernel = linear_motion_kernel(_uniform(*length_range, g), _uniform(0, 180, g), size)
    return convolve(img, kernel)


@DEGRADATIONS.register("shake-blur")
def shake_blur(img, g, max_extent_range=(6.0, 15.0), size: int = 31) -> torch.Tensor:
    """Hand-held camera shake (curved, uneven trajectories, as in GoPro-style synthetic blur)."""
    return convolve(img, shake_kernel(g, size=size, max_extent=_uniform(*max_extent_range, g)))


@DEGRADATIONS.register("defocus-blur")
def defocus_blur(img, g, radius_range=(1.0, 6.0)) -> torch.Tensor:
    """Out-of-focus blur: a disk kernel of random radius."""
    radius = _uniform(*radius_range, g)
    return convolve(img, defocus_kernel(radius, 2 * math.ceil(radius) + 3))


@DEGRADATIONS.register("blur-real")
def real_blur(img, g) -> torch.Tensor:
    """RealBlur-like low-light blur: in linear light, bright regions (lamps, reflections) are
    brighter than the sensor's white; camera shake over the long exposure smears them and the
    sensor clips (saturated streaks); then shot and read noise, gamma and JPEG."""
    lin = srgb_to_linear(img)
    bright = lin.amax(dim=-3, keepdim=True) > _uniform(0.6, 0.9, g)  # whole pixels, not channels
    boost = torch.where(bright, _uniform(2.0, 6.0, g), 1.0)
    blurred = convolve(lin * boost, shake_kernel(g, max_extent=_uniform(6.0, 15.0, g))).clamp(0, 1)
    shot, read = _uniform(2e-4, 2e-3, g), _uniform(1e-5, 2e-4, g)
    std = torch.sqrt(shot * blurred + read)
    noisy = linear_to_srgb(blurred + std * torch.randn(blurred.shape, generator=g).to(blurred))
    return jpeg(noisy, int(round(_uniform(70, 95, g)))) if noisy.dim() == 3 else noisy
