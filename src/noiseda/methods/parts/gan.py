"""GAN pieces of the pixel-space methods (PixelDA, CyCADA, C2N): a residual generator, patch
discriminators (a small one, and pix2pix's PatchGAN), the non-saturating loss, and the discriminator read with frozen weights so that
each side of the game gets only its own gradient."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class Generator(nn.Module):
    """Residual conv net: input (+ a noise map) -> input + a learned change (identity at start)."""

    def __init__(self, width: int = 32, blocks: int = 4, noise_channels: int = 1):
        super().__init__()
        layers = [nn.Conv2d(3 + noise_channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        return x + self.out(self.body(x if noise is None else torch.cat([x, noise], dim=1)))


class PatchDiscriminator(nn.Module):
    """Strided convs to a map of real/fake logits, one per patch."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PatchGAN(nn.Module):
    """pix2pix/CycleGAN's PatchGAN: ``layers`` strided 4x4 convolutions (doubling the width up to
    8x, instance norm after the first), one more at stride 1, and a 4x4 convolution to one
    real/fake logit per overlapping patch."""

    def __init__(self, width: int = 64, layers: int = 3, channels: int = 3):
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        cin = width
        for i in range(1, layers + 1):
            cout = width * min(2 ** i, 8)
            body += [nn.Conv2d(cin, cout, 4, 2 if i < layers else 1, 1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2)]
            cin = cout
        body.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def frozen(discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator on ``fake`` with its weights frozen: gradients reach the generator only."""
    weights = {k: v.detach() for k, v in discriminator.named_parameters()}
    return functional_call(discriminator, weights, (fake,))


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
