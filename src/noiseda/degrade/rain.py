"""Rain: Rain13K-style synthetic streaks, and a harder real-like rain with depth, haze and splashes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noiseda.degrade.registry import DEGRADATIONS
from noiseda.degrade.ops import batched, convolve, defocus_kernels, motion_kernels, per_sample, rand, uniform


def streak_layers(like: torch.Tensor, g: torch.Generator, density, length, angle, width) -> torch.Tensor:
    """Bx1xHxW layers of rain streaks in [0, 1] (one per sample; parameters are (B,) tensors):
    sparse random drops smeared along the fall direction by a motion kernel (how a falling drop
    looks during an exposure); drops wider than a pixel are widened by a disk first."""
    b, _, h, w = like.shape
    dev = like.device
    drops = (rand(g, (b, 1, h, w), like) < per_sample(density.to(dev))).to(like.dtype)
    drops = drops * (0.5 + 0.5 * rand(g, (b, 1, h, w), like))  # varying drop brightness
    radius = torch.where(width > 1.0, width / 2, 0.0)  # radius 0: the identity kernel
    drops = convolve(drops, defocus_kernels(radius, 2 * math.ceil(float(radius.max())) + 3).to(dev))
    size = 2 * int(float(length.max()) / 2) + 3
    streaks = convolve(drops, motion_kernels(length, angle, size).to(dev)) * per_sample(length.to(dev))
    return streaks.clamp(0, 1)


def blend(img: torch.Tensor, layer: torch.Tensor, intensity: torch.Tensor, screen: torch.Tensor) -> torch.Tensor:
    """Per sample: screen blend (1 - (1-x)(1-l)) where ``screen`` holds, else clipped addition."""
    layer = layer * per_sample(intensity.to(img))
    return torch.where(per_sample(screen.to(img.device)), 1 - (1 - img) * (1 - layer), (img + layer).clamp(0, 1))


@DEGRADATIONS.register("rain-streaks")
@batched
def rain_streaks(
    img, g, density_range=(0.002, 0.02), length_range=(10.0, 35.0), angle_range=(60.0, 120.0),
    width_range=(1.0, 2.0), intensity_range=(0.4, 0.9),
) -> torch.Tensor:
    """Synthetic rain as in Rain13K-style training sets: one layer of straight, parallel streaks
    (random angle, length, width, density, intensity) blended additively or in screen mode."""
    b = img.shape[0]
    density, length = uniform(g, b, *density_range), uniform(g, b, *length_range)
    angle, width = uniform(g, b, *angle_range), uniform(g, b, *width_range)
    screen = uniform(g, b, 0.0, 1.0) < 0.5
    intensity = uniform(g, b, *intensity_range)
    return blend(img, streak_layers(img, g, density, length, angle, width), intensity, screen)


@DEGRADATIONS.register("rain-real")
@batched
def rain_real(img, g) -> torch.Tensor:
    """Real-like rain, harder than the training streaks: 2-4 layers at different depths (near
    drops long, wide, out of focus and bright; far drops short, thin, faint), a shared wind angle
    with jitter, veiling haze from rain accumulation (contrast loss towards a light grey), and
    small splash blobs on the lower part of the frame."""
    b, _, h, w = img.shape
    layers = torch.randint(2, 5, (b,), generator=g, device=g.device).cpu()
    wind = uniform(g, b, 70.0, 110.0)
    out = img
    for i in range(4):  # layer i of n lies at depth i / (n - 1); samples with fewer layers skip it
        active = i < layers
        depth = (i / (layers - 1).clamp(min=1)).clamp(max=1.0)
        near = 1 - depth
        layer = streak_layers(
            img, g,
            density=uniform(g, b, 0.001, 0.006) * (1 + 2 * depth),
            length=5 + 35 * near * uniform(g, b, 0.7, 1.0),
            angle=wind + uniform(g, b, -8.0, 8.0),
            width=1 + 3 * near,
        )
        # close drops are out of focus (radius 2 * near where near > 0.5, else sharp)
        layer = convolve(layer, defocus_kernels(torch.where(near > 0.5, 2 * near, 0.0), 7).to(img.device))
        intensity = uniform(g, b, 0.3, 0.8) * (0.5 + 0.5 * near) * active
        out = blend(out, layer, intensity, torch.ones(b, dtype=torch.bool))
    haze, veil = per_sample(uniform(g, b, 0.05, 0.3, img.device)), per_sample(uniform(g, b, 0.6, 0.9, img.device))
    out = out * (1 - haze) + veil * haze
    splash = (rand(g, (b, 1, h, w), img) < 0.0015).to(img.dtype)
    splash[..., : h // 2, :] = 0
    splash = F.max_pool2d(splash, 3, 1, 1) * 0.5
    return (out + splash).clamp(0, 1)
