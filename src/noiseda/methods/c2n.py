"""C2N (Jang et al., ICCV 2021): learn to make real-looking noise from clean images, then denoise it.

Two stages, as the authors train it:
1. (the first ``generator_share`` of the run) a generator turns a clean image and a random
   32-d code into a noisy one, clean + noise; a fully convolutional critic judges it against the
   unlabeled real noisy images under WGAN-GP, and a term weighted 1e-2 keeps the generated noise
   zero-mean per image and channel. The restorer does not learn.
2. (the rest) the generator is fixed; the restorer learns from (generated noisy, clean) pairs
   under an L1 loss.
It reads the clean images of the synthetic pairs and the real noisy images; the synthetic
degradation is not used.

The nets have the authors' shapes at a width of ``width`` (theirs: 64, method.options.c2n.width):
the generator extracts features of the clean image (2 convolutions to twice the width, merged
with the code broadcast over the image, 5 residual blocks), draws signal-dependent noise
features from a Normal whose mean and scale it predicts (reparameterised, so gradients reach
them) and signal-independent ones from a uniform draw, passes each through residual blocks of
1x1 and of 3x3 convolutions (3 blocks independent, 2 dependent), and sums them into the noise;
the critic is a convolution, 6 residual blocks and a convolution to one score per pixel.
Not the same as theirs: one critic update per generator update, and a constant learning rate
(theirs decays x0.8 every 3 epochs). Runs of the earlier, jointly trained C2N of this project
(other nets) cannot be resumed with this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.errors import NoisedaError
from noiseda.methods.base import Method, TableRow, register_method
from noiseda.methods.parts.gan import frozen


class ResBlock(nn.Module):
    def __init__(self, width: int, kernel: int = 3, bias: bool = True):
        super().__init__()
        conv = lambda: nn.Conv2d(width, width, kernel, padding=kernel // 2, bias=bias, padding_mode="reflect")  # noqa: E731
        self.body = nn.Sequential(conv(), nn.PReLU(), conv())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _two_pipes(width: int, blocks: int) -> nn.ModuleList:
    """Residual blocks of 1x1 convolutions (pixel-wise) and of 3x3 ones (spatial), summed."""
    return nn.ModuleList([nn.Sequential(*(ResBlock(width, k, bias=False) for _ in range(blocks))) for k in (1, 3)])


class NoiseGenerator(nn.Module):
    """clean, code -> (clean + noise, noise)."""

    def __init__(self, width: int = 64, code_size: int = 32, channels: int = 3):
        super().__init__()
        self.width, self.code_size = width, code_size
        conv3 = lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")  # noqa: E731
        self.extract_head = nn.Sequential(conv3(channels, width), nn.PReLU(), conv3(width, 2 * width))
        self.extract_merge = nn.Sequential(conv3(2 * width + code_size, 2 * width), nn.PReLU())
        self.extract = nn.Sequential(*(ResBlock(2 * width) for _ in range(5)))
        self.independent_in, self.dependent_in = nn.Conv2d(width, width, 1), nn.Conv2d(width, width, 1)
        self.independent, self.dependent = _two_pipes(width, 3), _two_pipes(width, 2)
        self.out = nn.Conv2d(width, channels, 1)

    def forward(self, clean: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = clean.shape
        code_map = code.view(n, self.code_size, 1, 1).expand(n, self.code_size, h, w)
        feat = self.extract(self.extract_merge(torch.cat([self.extract_head(clean), code_map], dim=1)))
        mean, scale = feat[:, :self.width], F.relu(feat[:, self.width:]) + 1e-6
        dependent = self.dependent_in(mean + scale * torch.randn_like(mean))  # reparameterised Normal
        independent = self.independent_in(torch.rand_like(mean))
        pipes = lambda x, two: two[0](x) + two[1](x)  # noqa: E731
        noise = self.out(pipes(independent, self.independent) + pipes(dependent, self.dependent))
        return clean + noise, noise


class Critic(nn.Module):
    """A score per pixel: higher for real noisy images (WGAN)."""

    def __init__(self, width: int = 64, channels: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, padding_mode="reflect"), nn.PReLU(),
                                  *(ResBlock(width) for _ in range(6)),
                                  nn.Conv2d(width, 1, 3, padding=1, padding_mode="reflect"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (|d critic / d x| - 1)^2 at random points between real and generated images."""
    t = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    between = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@register_method("c2n")
class C2N(Method):
    streams = ("synthetic", "real")  # the synthetic pairs' clean images only
    table = TableRow(space="pixel (noise model)", trained_on="clean + real noisy", paper="35.35 / 0.9370 / - (Table 5)",
                     tasks=("denoise",), order=70)

    idle_nets = True  # each stage trains only some of its nets

    @dataclass
    class Options:
        width: int = 64  # of the generator and the critic (the authors': 64)
        code_size: int = 32  # the random vector per image
        generator_share: float = 0.5  # the first part of the run trains the generator alone
        gp_weight: float = 10.0  # WGAN-GP's gradient penalty
        zero_mean_weight: float = 1e-2  # the generated noise's mean per image and channel

    @classmethod
    def check_config(cls, cfg, options) -> None:
        if not 0 < options.generator_share < 1:
            raise NoisedaError(f"config method.options.{cls.name}.generator_share: expected 0 < share < 1 (a "
                               f"generator stage, then a denoiser stage), got {options.generator_share}")

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.generator = NoiseGenerator(self.options.width, self.options.code_size)
        self.critic = Critic(self.options.width)

    def stage(self) -> str:
        """"generator" for the generator's share of the run, then "restorer"."""
        return "generator" if self.progress < self.options.generator_share else "restorer"

    def restorer_frozen(self, step: int) -> bool:
        return self.stage() == "generator"

    def _fake(self, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = torch.randn(clean.shape[0], self.options.code_size, device=clean.device, dtype=clean.dtype)
        return self.generator(clean, code)

    def forward(self, batch, lam):
        clean, real = batch.clean, batch.real
        if self.stage() == "restorer":
            with torch.no_grad():
                noisy, _ = self._fake(clean)
            sup = F.l1_loss(self.restorer(noisy), clean)
            return {"total": sup, "sup": sup}
        noisy, noise = self._fake(clean)
        o = self.options
        wasserstein = self.critic(real).mean() - self.critic(noisy.detach()).mean()
        penalty = gradient_penalty(self.critic, real, noisy.detach())
        fool = -frozen(self.critic, noisy).mean()  # the generator's loss, through a fixed critic
        zero_mean = noise.mean(dim=(2, 3)).abs().mean()
        total = -wasserstein + o.gp_weight * penalty + fool + o.zero_mean_weight * zero_mean
        return {"total": total, "wasserstein": wasserstein.detach(), "penalty": penalty.detach(),
                "fool": fool.detach(), "zero_mean": zero_mean.detach()}
