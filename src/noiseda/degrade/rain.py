"""Rain: Rain13K-style synthetic streaks, and a harder real-like rain with depth, haze and splashes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from noiseda.degrade import DEGRADATIONS
from noiseda.degrade.blur import convolve, defocus_kernel, linear_motion_kernel
from noiseda.degrade.noise import _uniform


def streak_layer(
    h: int, w: int, g: torch.Generator, density: float, length: float, angle: float, width: float
) -> torch.Tensor:
    """A 1xHxW layer of rain streaks in [0, 1]: sparse random drops smeared along the fall
    direction by a motion kernel (how a falling drop looks during an exposure)."""
    drops = (torch.rand(1, 1, h, w, generator=g) < density).float()
    drops = drops * (0.5 + 0.5 * torch.rand(1, 1, h, w, generator=g))  # varying drop brightness
    if width > 1.0:
        drops = convolve(drops, defocus_kernel(width / 2, 2 * math.ceil(width / 2) + 3))
    size = 2 * int(length / 2) + 3
    streaks = convolve(drops, linear_motion_kernel(length, angle, size)) * length
    return streaks[0].clamp(0, 1)


def _blend(img: torch.Tensor, layer: torch.Tensor, intensity: float, screen: bool) -> torch.Tensor:
    layer = (layer * intensity).to(img)
    return 1 - (1 - img) * (1 - layer) if screen else (img + layer).clamp(0, 1)


@DEGRADATIONS.register("rain-streaks")
def rain_streaks(
    img, g, density_range=(0.002, 0.02), length_range=(10.0, 35.0), angle_range=(60.0, 120.0),
    width_range=(1.0, 2.0), intensity_range=(0.4, 0.9),
) -> torch.Tensor:
    """Synthetic rain as in Rain13K-style training sets: one layer of straight, parallel streaks
    (random angle, length, width, density, intensity) blended additively or in screen mode."""
    h, w = img.shape[-2:]
    layer = streak_layer(h, w, g, _uniform(*density_range, g), _uniform(*length_range, g),
                         _uniform(*angle_range, g), _uniform(*width_range, g))
    screen = bool(torch.rand((), generator=g) < 0.5)
    return _blend(img, layer, _uniform(*intensity_range, g), screen)


@DEGRADATIONS.register("rain-real")
def rain_real(img, g) -> torch.Tensor:
    """Real-like rain, harder than the training streaks: 2-4 layers at different depths (near
    drops long, wide, out of focus and bright; far drops short, thin, faint), a shared wind angle
    with jitter, veiling haze from rain accumulation (contrast loss towards a light grey), and
    small splash blobs on the lower part of the frame."""
    h, w = img.shape[-2:]
    out = img
    wind = _uniform(70.0, 110.0, g)
    for depth in torch.linspace(0, 1, int(torch.randint(2, 5, (), generator=g))).tolist():
        near = 1 - depth
        layer = streak_layer(
            h, w, g,
            density=_uniform(0.001, 0.006, g) * (1 + 2 * depth),
            length=5 + 35 * near * _uniform(0.7, 1.0, g),
            angle=wind + _uniform(-8.0, 8.0, g),
            width=1 + 3 * near,
        )
        if near > 0.5:  # close drops are out of focus
            layer = convolve(layer[None], defocus_kernel(2 * near, 7))[0]
        out = _blend(out, layer, _uniform(0.3, 0.8, g) * (0.5 + 0.5 * near), screen=True)
    haze = _uniform(0.05, 0.3, g)
    veil = _uniform(0.6, 0.9, g)
    out = out * (1 - haze) + veil * haze
    splash = (torch.rand(1, 1, h, w, generator=g) < 0.0015).float()
    splash[..., : h // 2, :] = 0
    splash = F.max_pool2d(splash, 3, 1, 1) * 0.5
    return (out + splash[0].to(out)).clamp(0, 1)
