"""Neighbor2Neighbor (Huang et al. 2021): self-supervised denoising from real noisy images alone.

Each 2x2 cell of a noisy image gives two neighbouring pixels, one to each of two half-size
sub-images g1(y) and g2(y) (independent noise, nearly the same signal). The restorer f learns
to map g1(y) to g2(y), with a regulariser that keeps the sub-sampled output of the full image
consistent: L = |f(g1 y) - g2 y|^2 + gamma |f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2, f(y)
without gradient. The synthetic pairs are not used. As in the authors' code, gamma grows
linearly from 0 to its ceiling (method.options.ne2ne.gamma, 2) over the run (gamma_ramp).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from noiseda.methods.base import Method, TableRow, register_method

# For each position in a 2x2 cell (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right),
# the two positions that share an edge with it.
_NEIGHBOURS = torch.tensor([[1, 2], [0, 3], [0, 3], [1, 2]])


def neighbour_subsample(img: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (N, C, H/2, W/2) sub-images: per image and cell a random pixel for g1 and a random
    edge neighbour of it for g2, the same positions in every channel."""
    n, c, h, w = img.shape
    h2, w2 = h // 2, w // 2
    cells = img[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2).permute(0, 1, 2, 4, 3, 5)
    cells = cells.reshape(n, c, h2, w2, 4)
    first = torch.randint(0, 4, (n, 1, h2, w2), generator=generator)
    second = _NEIGHBOURS[first, torch.randint(0, 2, (n, 1, h2, w2), generator=generator)]
    pick = lambda idx: cells.gather(-1, idx.to(img.device)[..., None].expand(n, c, h2, w2, 1)).squeeze(-1)  # noqa: E731
    return pick(first), pick(second)


@register_method("ne2ne")
class Ne2Ne(Method):
    streams = ("real",)
    table = TableRow(space="-", trained_on="real noisy only", paper="25.61 / 0.5647 / 0.3039", tasks=("denoise",), order=60)

    earlier_behaviour = {"gamma_ramp": False}  # before the authors' schedule was the default

    @dataclass
    class Options:
        gamma: float = 2.0  # weight of the regulariser (its ceiling, with gamma_ramp)
        gamma_ramp: bool = True  # gamma * p over the run's progress p, as the authors do per epoch

    def forward(self, batch, lam):
        noisy = batch.real
        state = torch.random.get_rng_state()  # the same cells for the image and for f(image)
        g1, g2 = neighbour_subsample(noisy)
        with torch.no_grad():
            full = self.restorer(noisy)
        torch.random.set_rng_state(state)
        f1, f2 = neighbour_subsample(full)
        out = self.restorer(g1)
        rec = F.mse_loss(out, g2)
        reg = F.mse_loss(out - g2, f1 - f2)
        gamma = self.options.gamma * (self.progress if self.options.gamma_ramp else 1.0)
        return {"total": rec + gamma * reg, "rec": rec.detach(), "reg": reg.detach()}

