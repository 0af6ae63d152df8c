"""DANN (Ganin & Lempitsky 2015): feature-space adaptation, the paper's first comparison.

A domain classifier reads the restorer's features of synthetic and real inputs and learns to
tell them apart; a gradient-reversal layer between them, of strength lambda, makes the
restorer learn features the classifier cannot separate. Total loss: L_sup + L_domain, the
classifier at full weight from step 1.

The authors' schedules are the defaults: the reversal strength lambda = 2 / (1 + exp(-10 p)) - 1
over the run's progress p (method.lambda_weight 1, lambda_slope 10, lambda_ramp_steps the whole
run, where the config leaves them unset) and the learning rate lr0 / (1 + 10 p)^0.75
(method.options.dann.lr_annealing). Simplification: Adam, as for every restorer here, where
the paper trains its classification nets with SGD and momentum 0.9.

Deviation: the classifier reads the features divided by their batch root mean square
(``normalize_features``). Without it the restorer raised the classifier's loss by inflating its
features (bottleneck RMS 0.2 -> 2800 within 150 steps at the CPU preset) and its output with
them; see docs/results.md.

The features are the restorer's bottleneck by default (found by one forward of a blank image,
see ``bottleneck_name``), or the modules named in ``method.options.dann.features``. The
classifier is a training-only module: only the restorer is exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from noiseda.methods.base import DANN_SCHEDULE, Method, TableRow, annealed_lr_scale, register_method
from noiseda.methods.parts.features import DomainClassifier, FeatureTap, bottleneck_name, domain_loss


@register_method("dann")
class DANN(Method):
    streams = ("synthetic", "real")
    lambda_role = "strength of the gradient reversal between the restorer and the domain classifier"
    table = TableRow(space="feature", trained_on="both", paper="30.09 / 0.7832 / 0.1348", adversarial=True, order=10)

    lambda_defaults = DANN_SCHEDULE

    earlier_behaviour = {"lr_annealing": False, "normalize_features": False}  # before the authors' schedule was the default

    @dataclass
    class Options:
        features: list[str] = field(default_factory=list)  # restorer modules to align; []: its bottleneck
        lr_annealing: bool = True  # DANN's lr0 / (1 + 10 p)^0.75 over the run's progress p
        normalize_features: bool = True  # classifier reads scale-free features (deviation: stops the divergence)

    def lr_scale(self) -> float:
        return annealed_lr_scale(self.progress) if self.options.lr_annealing else 1.0

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
        features = self.tap.take()
        domain = domain_loss(self.classifiers, features, n, lam, self.options.normalize_features)
        # The features' size: without normalize_features it grew without bound (docs/results.md).
        rms = torch.stack([f.detach().float().pow(2).mean() for f in features.values()]).mean().sqrt()
        return {"total": sup + domain, "sup": sup, "domain": domain.detach(), "feature_rms": rms}

