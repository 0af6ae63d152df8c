"""DANN (Ganin & Lempitsky 2015): feature-space adaptation, the paper's first comparison.

A domain classifier reads the restorer's features of synthetic and real inputs and learns to
tell them apart; a gradient-reversal layer between them, of strength lambda, makes the
restorer learn features the classifier cannot separate. Total loss: L_sup + L_domain, the
classifier at full weight from step 1, lambda on the config's ramp (DANN's own schedule is
method.lambda_weight=1, method.lambda_slope=10, method.lambda_ramp_steps=train.steps, which
compare-methods sets, with --adversarial-weight for the ceiling). The features are the
restorer's bottleneck by default (found by one forward of a blank image, see ``bottleneck_name``), or
the modules named in ``method.options.dann.features``. The classifier is a
training-only module: only the restorer is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from noiseda.methods.base import Method, TableRow, register_method
from noiseda.methods.parts.features import DomainClassifier, FeatureTap, bottleneck_name, domain_loss


@register_method("dann")
class DANN(Method):
    streams = ("synthetic", "real")
    lambda_role = "strength of the gradient reversal between the restorer and the domain classifier"
    table = TableRow(space="feature", trained_on="both", paper="30.09 / 0.7832 / 0.1348", adversarial=True, order=10)

    @dataclass
    class Options:
        features: list[str] = field(default_factory=list)  # restorer modules to align; []: its bottleneck

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.tap = FeatureTap(restorer, list(self.options.features) or [bottleneck_name(restorer)], cfg.net.name)
        self.classifiers = nn.ModuleDict({n.replace(".", "_"): DomainClassifier(shape[0])
                                          for n, shape in self.tap.shapes.items()})

    def forward(self, batch, lam):
        x_s, x_r = batch.synthetic, batch.real
        n = x_s.shape[0]
        restored = self.restorer(torch.cat([x_s, x_r]))  # one pass: features of both domains
        sup = self.supervised(restored[:n], batch.clean)
        domain = domain_loss(self.classifiers, self.tap.take(), n, lam)
        return {"total": sup + domain, "sup": sup, "domain": domain.detach()}

