"""CyCADA (Hoffman et al. 2018): pixel and feature space, a comparison of the paper's Table 1.

Two generators translate synthetic degraded inputs to the real domain and back; two patch
discriminators judge each domain; a cycle loss (L1) makes the round trips return the input; a
task-consistency loss keeps the restorer's output unchanged by translation (its output for the
translated image should match its output for the original, which is held fixed); a feature-level
adversarial loss (DANN's reversed domain classifier on the restorer's bottleneck) aligns the
translated synthetic inputs with the real ones. The restorer learns from the translated
synthetic pairs. The discriminators and the classifier learn at full weight from step 1; what
reaches the generators and the restorer from them is weighted by the lambda ramp; each
discriminator gets only its own loss (as in pixelda). Only the restorer is exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.methods.base import DANN_SCHEDULE, Method, TableRow, register_method
from noiseda.methods.parts.features import DomainClassifier, FeatureTap, bottleneck_name, domain_loss
from noiseda.methods.parts.gan import Generator, PatchDiscriminator, frozen, gan_loss


@register_method("cycada")
class CyCADA(Method):
    streams = ("synthetic", "real")
    lambda_role = "weight of the generators' adversarial loss and strength of the feature-level gradient reversal"
    table = TableRow(space="feature & pixel", trained_on="both", paper="30.81 / 0.8067 / 0.1256", adversarial=True, order=40)
    lambda_defaults = DANN_SCHEDULE  # the reversal (or adversarial weight) on DANN's schedule

    @dataclass
    class Options:
        cycle_weight: float = 10.0  # CycleGAN's
        consistency_weight: float = 1.0  # of the task-consistency loss

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.to_real = Generator(noise_channels=0)
        self.to_synthetic = Generator(noise_channels=0)
        self.judge_real = PatchDiscriminator()
        self.judge_synthetic = PatchDiscriminator()
        self.tap = FeatureTap(restorer, [bottleneck_name(restorer)], cfg.net.name)
        channels = self.tap.shapes[self.tap.names[0]][0]
        self.classifiers = nn.ModuleDict({self.tap.names[0].replace(".", "_"): DomainClassifier(channels)})

    def forward(self, batch, lam):
        x_s, x_r, gt = batch.synthetic, batch.real, batch.clean
        n = x_s.shape[0]
        s2r, r2s = self.to_real(x_s), self.to_synthetic(x_r)
        cycle = (F.l1_loss(self.to_synthetic(s2r), x_s) + F.l1_loss(self.to_real(r2s), x_r)) / 2

        restored = self.restorer(torch.cat([s2r, x_r]))  # one pass: translated synthetic and real
        features = self.tap.take()
        sup = self.supervised(restored[:n], gt)
        with torch.no_grad():  # the outputs translation must not change
            fixed = self.restorer(torch.cat([x_s, x_r]))
        self.tap.take()
        again = self.restorer(r2s)
        self.tap.take()
        consistency = (self.supervised(restored[:n], fixed[:n]) + self.supervised(again, fixed[n:])) / 2

        disc = (gan_loss(self.judge_real(x_r), True) + gan_loss(self.judge_real(s2r.detach()), False)
                + gan_loss(self.judge_synthetic(x_s), True) + gan_loss(self.judge_synthetic(r2s.detach()), False)) / 4
        fool = (gan_loss(frozen(self.judge_real, s2r), True) + gan_loss(frozen(self.judge_synthetic, r2s), True)) / 2
        feature = domain_loss(self.classifiers, features, n, lam)
        total = (sup + self.options.cycle_weight * cycle + self.options.consistency_weight * consistency
                 + disc + lam * fool + feature)
        return {"total": total, "sup": sup, "cycle": cycle.detach(), "consistency": consistency.detach(),
                "disc": disc.detach(), "fool": fool.detach(), "feature": feature.detach()}

