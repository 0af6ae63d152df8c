"""A control, not a method from the literature: vanilla plus a total-variation penalty on the
restored *real* images, weighted by lambda on noise-da's ramp.

It adds nothing but a smoothing prior on the real side. If noise-da's effect on real images is
only smoothing (what its gradient alignment suggests at small scale: docs/results.md), this
control, at a matched strength, does as well; where noise-da beats it, the difference is
adaptation beyond smoothing. The penalty is the mean absolute difference between neighbouring
pixels, smoothed by Charbonnier's eps so that its gradient is defined at 0.
"""

from __future__ import annotations

import torch

from noiseda.methods.base import Method, TableRow, register_method


def total_variation(y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    dx, dy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    return torch.sqrt(dx * dx + eps * eps).mean() + torch.sqrt(dy * dy + eps * eps).mean()


@register_method("tv-prior")
class TVPrior(Method):
    streams = ("synthetic", "real")
    lambda_role = "weight of the total variation of the restored real images"
    # a control, compared only when named (compare-methods --methods ... tv-prior)
    table = TableRow(space="- (control: smoothing of the real outputs)", trained_on="both", default=False, order=95)

    def forward(self, batch, lam):
        x_s = batch.synthetic
        restored = self.restorer(torch.cat([x_s, batch.real]))  # one pass over both domains
        y_s, y_r = restored[: x_s.shape[0]], restored[x_s.shape[0]:]
        sup = self.supervised(y_s, batch.clean)
        tv = total_variation(y_r.float(), self.cfg.method.charbonnier_eps)
        return {"total": sup + lam * tv, "sup": sup, "tv_real": tv.detach()}

