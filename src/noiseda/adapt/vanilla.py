"""The synthetic-only baseline: supervised Charbonnier loss, nothing else."""

from noiseda.adapt import METHODS
from noiseda.adapt.base import Method


class Vanilla(Method):
    def forward(self, batch, lam):
        loss = self.supervised(self.restorer(batch["syn_in"]), batch["syn_gt"])
        return {"total": loss, "sup": loss}


@METHODS.register("vanilla")
def build(cfg, restorer):
    return Vanilla(cfg, restorer)
