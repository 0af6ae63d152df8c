"""Blur: motion kernels, camera-shake trajectories, defocus, and a RealBlur-like low-light blur."""

from __future__ import annotations

import math

import torch

from noiseda.degrade.registry import DEGRADATIONS
from noiseda.degrade.ops import (
    batched, convolve, defocus_kernels, jpeg, linear_to_srgb, motion_kernels, normal, per_sample, shake_kernels,
    srgb_to_linear, uniform,
)


def linear_motion_kernel(length: float, angle_deg: float, size: int) -> torch.Tensor:
    """One straight motion path of ``length`` pixels at ``angle_deg``, rasterised to size x size."""
    return motion_kernels(torch.tensor([float(length)]), torch.tensor([float(angle_deg)]), size)[0]


def shake_kernel(g: torch.Generator, size: int = 31, max_extent: float = 12.0) -> torch.Tensor:
    """One camera-shake kernel whose path spans between 0.3 and 1 times ``max_extent`` pixels."""
    return shake_kernels(g, uniform(g, 1, 0.3, 1.0) * max_extent, size)[0]


def defocus_kernel(radius: float, size: int) -> torch.Tensor:
    """One disk (out-of-focus lens aperture) with anti-aliased edge."""
    return defocus_kernels(torch.tensor([float(radius)]), size)[0]


@DEGRADATIONS.register("motion-blur")
@batched
def motion_blur(img, g, length_range=(5.0, 21.0), size: int = 23) -> torch.Tensor:
    """Uniform linear motion (object or camera panning) at a random angle and length."""
    b = img.shape[0]
    lengths, angles = uniform(g, b, *length_range), uniform(g, b, 0.0, 180.0)
    return convolve(img, motion_kernels(lengths, angles, size).to(img.device))


@DEGRADATIONS.register("shake-blur")
@batched
def shake_blur(img, g, max_extent_range=(6.0, 15.0), size: int = 31) -> torch.Tensor:
    """Hand-held camera shake (curved, uneven trajectories, as in GoPro-style synthetic blur)."""
    b = img.shape[0]
    extents = uniform(g, b, *max_extent_range) * uniform(g, b, 0.3, 1.0)
    return convolve(img, shake_kernels(g, extents, size).to(img.device))


@DEGRADATIONS.register("defocus-blur")
@batched
def defocus_blur(img, g, radius_range=(1.0, 6.0)) -> torch.Tensor:
    """Out-of-focus blur: a disk kernel of random radius."""
    radii = uniform(g, img.shape[0], *radius_range, img.device)
    return convolve(img, defocus_kernels(radii, 2 * math.ceil(radius_range[1]) + 3))


@DEGRADATIONS.register("blur-real")
@batched
def real_blur(img, g) -> torch.Tensor:
    """RealBlur-like low-light blur: in linear light, bright regions (lamps, reflections) are
    brighter than the sensor's white; camera shake over the long exposure smears them and the
    sensor clips (saturated streaks); then shot and read noise, gamma and JPEG."""
    b, dev = img.shape[0], img.device
    threshold, boost = uniform(g, b, 0.6, 0.9, dev), uniform(g, b, 2.0, 6.0, dev)
    extents = uniform(g, b, 6.0, 15.0) * uniform(g, b, 0.3, 1.0)
    shot, read = uniform(g, b, 2e-4, 2e-3, dev), uniform(g, b, 1e-5, 2e-4, dev)
    quality = uniform(g, b, 70, 95)
    lin = srgb_to_linear(img)
    bright = lin.amax(dim=1, keepdim=True) > per_sample(threshold)  # whole pixels, not channels
    lit = lin * torch.where(bright, per_sample(boost), 1.0)
    blurred = convolve(lit, shake_kernels(g, extents).to(dev)).clamp(0, 1)
    std = torch.sqrt(per_sample(shot) * blurred + per_sample(read))
    return jpeg(linear_to_srgb(blurred + std * normal(g, blurred.shape, blurred)), quality)
