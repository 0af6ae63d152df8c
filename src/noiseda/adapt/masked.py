"""Masked training (Chen et al. 2023, "MaskedD"): supervised on the synthetic pairs, with most
input pixels masked during training so that the restorer learns image content rather than
the synthetic noise. Per image a ratio is drawn from method.mask_ratio (default 0.75-0.85) and
that share of pixels is set to zero in every channel; nothing is masked at test time.
Simplification: the paper also masks attention in its transformer; that part is not here
(the restorers are used as they are), so a convolutional restorer sees masked inputs in
training and full ones in testing.
"""

from __future__ import annotations

import torch

from noiseda.adapt import METHODS
from noiseda.adapt.base import Method


def mask_pixels(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ratio = torch.empty(n, 1, 1, 1).uniform_(low, high)
    keep = (torch.rand(n, 1, h, w) >= ratio).to(device=x.device, dtype=x.dtype)
    return x * keep


class MaskedTraining(Method):
    def forward(self, batch, lam):
        low, high = self.cfg.method.mask_ratio
        loss = self.supervised(self.restorer(mask_pixels(batch["syn_in"], low, high)), batch["syn_gt"])
        return {"total": loss, "sup": loss}


@METHODS.register("masked")
def build(cfg, restorer):
    return MaskedTraining(cfg, restorer)
