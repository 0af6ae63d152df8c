"""The synthetic-only baseline: supervised Charbonnier loss, nothing else."""

from noiseda.methods.base import Method, TableRow, register_method


@register_method("vanilla")
class Vanilla(Method):
    table = TableRow(space="-", trained_on="synthetic pairs", paper="26.58 / 0.6132 / 0.3171", order=0)

    def forward(self, batch, lam):
        loss = self.supervised(self.restorer(batch.synthetic), batch.clean)
        return {"total": loss, "sup": loss}

