"""PixelDA (Bousmalis et al. 2017): pixel-space adaptation, a comparison of the paper's Table 1.

A generator turns a synthetic degraded input (and a noise map) into one that looks like a real
degraded image; a discriminator tells real degraded images from translated ones; a content
loss (the paper's pairwise MSE: differences between pixels, not their absolute values) keeps
the translated image's content. The restorer learns from the translated pairs (and, as PixelDA
trains its task net on both, from the untranslated ones). All parts train jointly from one
loss and one optimiser: the discriminator's loss reaches only the discriminator (the fakes are
detached for it), and the generator's adversarial loss goes through a frozen copy of the
discriminator's weights, so each side of the game gets only its own gradient. The
discriminator learns at full weight from step 1; the generator's adversarial term is weighted
by the config's lambda ramp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from noiseda.methods.base import Method, TableRow, register_method


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


def pairwise_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PixelDA's content loss: mean squared difference minus the squared mean difference, per
    image (what stays if a constant shift is forgiven), averaged over the batch."""
    d = (a - b).flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


def frozen(discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator on ``fake`` with its weights frozen: gradients reach the generator only."""
    weights = {k: v.detach() for k, v in discriminator.named_parameters()}
    return functional_call(discriminator, weights, (fake,))


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


@register_method("pixelda")
class PixelDA(Method):
    streams = ("synthetic", "real")
    lambda_role = "weight of the generator's adversarial loss"
    table = TableRow(space="pixel", trained_on="both", paper="29.24 / 0.7611 / 0.1403", adversarial=True, order=30)

    @dataclass
    class Options:
        content_weight: float = 1.0  # of the pairwise-MSE content loss

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.generator = Generator()
        self.discriminator = PatchDiscriminator()


    def forward(self, batch, lam):
        x_s, x_r, gt = batch.synthetic, batch.real, batch.clean
        n = x_s.shape[0]
        noise = torch.randn(n, 1, *x_s.shape[-2:], device=x_s.device, dtype=x_s.dtype)
        fake = self.generator(x_s, noise)
        restored = self.restorer(torch.cat([fake, x_s]))
        sup = self.supervised(restored[:n], gt)
        sup_source = self.supervised(restored[n:], gt)
        disc = (gan_loss(self.discriminator(x_r), True) + gan_loss(self.discriminator(fake.detach()), False)) / 2
        fool = gan_loss(frozen(self.discriminator, fake), True)
        content = pairwise_mse(fake, x_s)
        total = (sup + sup_source) / 2 + self.options.content_weight * content + disc + lam * fool
        return {"total": total, "sup": sup, "disc": disc.detach(), "fool": fool.detach(), "content": content.detach()}

