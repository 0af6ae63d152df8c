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
import torch

from noiseda.methods.base import DANN_SCHEDULE, Method, TableRow, pairwise_mse, register_method
from noiseda.methods.parts.gan import Generator, PatchDiscriminator, frozen, gan_loss


@register_method("pixelda")
class PixelDA(Method):
    streams = ("synthetic", "real")
    lambda_role = "weight of the generator's adversarial loss"
    table = TableRow(space="pixel", trained_on="both", paper="29.24 / 0.7611 / 0.1403", adversarial=True, order=30)
    lambda_defaults = DANN_SCHEDULE  # the reversal (or adversarial weight) on DANN's schedule

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

