"""C2N (Jang et al. 2021): learn to make real-looking noise from clean images, then denoise it.

A generator turns a clean image and a random code map into a noisy one, clean + noise, the
noise made in two parts as in C2N: a signal-independent part from the code alone and a
signal-dependent part from the clean pixel and the code, both pixel-wise (1x1 convolutions),
summed and then given spatial correlation by a few 3x3 convolutions. A patch discriminator
tells the unlabeled real noisy images from generated ones; a stabilising loss keeps each
generated noise map zero-mean per channel (noise must not shift colours). The restorer learns
from (generated noisy, clean) pairs, with the generated image detached: the generator learns
only from the discriminator. It uses the clean images of the synthetic pairs and the real noisy
images; the synthetic degradation itself is not used. The denoising comparison of the paper's
Table 5.

Simplifications (stated in docs/methods.md too): the authors train the generator first and
the denoiser afterwards; here both train together from step 1 (the generator starts adding
zero noise, so the restorer first learns the identity and follows the generator as it
improves). The adversarial loss is the non-saturating GAN loss of the other methods here, not
WGAN-GP, and the generator is a small one sized for this framework's nets. Weights: the
generator's adversarial term 1, the stabilising term 1 (our choice; method.options.c2n.stabilise_weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from noiseda.methods.base import Method, TableRow, register_method
from noiseda.methods.parts.gan import PatchDiscriminator, frozen, gan_loss


class NoiseGenerator(nn.Module):
    """clean, code -> (clean + noise, noise); noise = spatial(independent(code) + dependent(clean, code))."""

    def __init__(self, code_channels: int = 8, width: int = 32, spatial_layers: int = 2):
        super().__init__()
        self.code_channels = code_channels
        self.independent = nn.Sequential(nn.Conv2d(code_channels, width, 1), nn.LeakyReLU(0.2),
                                         nn.Conv2d(width, width, 1))
        self.dependent = nn.Sequential(nn.Conv2d(3 + code_channels, width, 1), nn.LeakyReLU(0.2),
                                       nn.Conv2d(width, width, 1))
        layers: list[nn.Module] = []
        for _ in range(spatial_layers):
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, 3, padding=1)]
        self.spatial = nn.Sequential(*layers, nn.LeakyReLU(0.2))
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # no noise at the start
        nn.init.zeros_(self.out.bias)

    def forward(self, clean: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixelwise = self.independent(code) + self.dependent(torch.cat([clean, code], dim=1))
        noise = self.out(self.spatial(pixelwise))
        return clean + noise, noise


@register_method("c2n")
class C2N(Method):
    streams = ("synthetic", "real")  # the synthetic pairs' clean images only
    table = TableRow(space="pixel (noise model)", trained_on="clean + real noisy", paper="35.35 / 0.9370 / - (Table 5)",
                     denoising_only=True, order=70)

    @dataclass
    class Options:
        stabilise_weight: float = 1.0  # of the zero-mean term on the generated noise

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.generator = NoiseGenerator()
        self.discriminator = PatchDiscriminator()

    def forward(self, batch, lam):
        clean, real = batch.clean, batch.real
        code = torch.randn(clean.shape[0], self.generator.code_channels, *clean.shape[-2:],
                           device=clean.device, dtype=clean.dtype)
        noisy, noise = self.generator(clean, code)
        sup = self.supervised(self.restorer(noisy.detach()), clean)
        disc = (gan_loss(self.discriminator(real), True) + gan_loss(self.discriminator(noisy.detach()), False)) / 2
        fool = gan_loss(frozen(self.discriminator, noisy), True)
        stabilise = noise.mean(dim=(2, 3)).abs().mean()
        total = sup + disc + fool + self.options.stabilise_weight * stabilise
        return {"total": total, "sup": sup, "disc": disc.detach(), "fool": fool.detach(),
                "stabilise": stabilise.detach()}

