"""Masked training (Chen et al. 2023, "MaskedD"): supervised on the synthetic pairs, with most
input pixels masked during training so that the restorer learns image content rather than
the synthetic noise. Per image a ratio is drawn from method.options.masked.mask_ratio (default 0.75-0.85) and
that share of pixels is set to zero in every channel; nothing is masked at test time.
Simplification: the paper also masks attention in its transformer; that part is not here
(the restorers are used as they are), so a convolutional restorer sees masked inputs in
training and full ones in testing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from noiseda.errors import NoisedaError
from noiseda.methods.base import Method, TableRow, register_method


def mask_pixels(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ratio = torch.empty(n, 1, 1, 1).uniform_(low, high)
    keep = (torch.rand(n, 1, h, w) >= ratio).to(device=x.device, dtype=x.dtype)
    return x * keep


@register_method("masked")
class MaskedTraining(Method):
    table = TableRow(space="-", trained_on="synthetic pairs (the paper's table says real)",
                     paper="28.51 / 0.7196 / 0.2348", order=50)

    @dataclass
    class Options:
        mask_ratio: list[float] = field(default_factory=lambda: [0.75, 0.85])  # share of input pixels masked

    @classmethod
    def check_config(cls, cfg, options) -> None:
        r = options.mask_ratio
        if len(r) != 2 or not (0 <= r[0] <= r[1] < 1):
            raise NoisedaError(f"config method.options.{cls.name}.mask_ratio: expected [low, high] with 0 <= low <= high < 1, "
                               f"got {r}")

    def forward(self, batch, lam):
        low, high = self.options.mask_ratio
        loss = self.supervised(self.restorer(mask_pixels(batch.synthetic, low, high)), batch.clean)
        return {"total": loss, "sup": loss}

