"""CyCADA (Hoffman et al. 2018): pixel and feature space, a comparison of the paper's Table 1.

In its authors' three stages, each a share of the run:
1. source (``source_share``): the restorer learns on the synthetic pairs alone (vanilla);
2. pixel (``pixel_share``): the restorer is fixed; two generators translate synthetic degraded
   inputs to the real domain and back; PatchGAN discriminators (3 strided layers) judge each
   domain; a cycle loss (L1, weight 10) makes the round trips return the input; the task
   consistency loss keeps the fixed source restorer's output unchanged by translation (its
   output for the translated image should match its output for the original, both ways);
3. feature (the rest): the generators are fixed; the restorer learns from the translated
   synthetic pairs, and a domain classifier behind a gradient reversal of strength lambda (DANN's
   schedule) aligns its bottleneck features of translated synthetic and real inputs, at a tenth
   of the learning rate (``feature_lr_scale``), as the authors' release does.
Each discriminator gets only its own loss (as in pixelda). Only the restorer is exported.
Not the same as theirs: the generators are small residual conv nets (theirs: CycleGAN's
ResNet generator), sized for this framework's runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.errors import NoisedaError
from noiseda.methods.base import DANN_SCHEDULE, Method, TableRow, register_method
from noiseda.methods.parts.features import DomainClassifier, FeatureTap, bottleneck_name, domain_loss
from noiseda.methods.parts.gan import Generator, PatchGAN, frozen, gan_loss


@register_method("cycada")
class CyCADA(Method):
    streams = ("synthetic", "real")
    lambda_role = "strength of the feature-level gradient reversal (third stage)"
    table = TableRow(space="feature & pixel", trained_on="both", paper="30.81 / 0.8067 / 0.1256", adversarial=True, order=40)
    lambda_defaults = DANN_SCHEDULE  # the reversal on DANN's schedule

    idle_nets = True  # each stage trains only some of its nets

    @dataclass
    class Options:
        cycle_weight: float = 10.0  # CycleGAN's
        consistency_weight: float = 1.0  # of the task-consistency loss
        source_share: float = 1 / 3  # of the run: the source stage
        pixel_share: float = 1 / 3  # the pixel stage; the rest is the feature stage
        feature_lr_scale: float = 0.1  # the feature stage's learning rates, relative to train.lr
        normalize_features: bool = True  # the classifier reads scale-free features (deviation, as dann's)

    @classmethod
    def check_config(cls, cfg, o) -> None:
        if not (0 <= o.source_share and 0 < o.pixel_share and o.source_share + o.pixel_share < 1):
            raise NoisedaError(f"config method.options.{cls.name}: expected source_share >= 0, pixel_share > 0 and "
                               f"their sum < 1 (a feature stage), got {o.source_share} and {o.pixel_share}")

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.to_real = Generator(noise_channels=0)
        self.to_synthetic = Generator(noise_channels=0)
        self.judge_real = PatchGAN()
        self.judge_synthetic = PatchGAN()
        self.tap = FeatureTap(restorer, [bottleneck_name(restorer)], cfg.net.name)
        channels = self.tap.shapes[self.tap.names[0]][0]
        self.classifiers = nn.ModuleDict({self.tap.names[0].replace(".", "_"): DomainClassifier(channels)})

    def stage(self) -> str:
        """"source", "pixel", then "feature", by the run's progress."""
        o = self.options
        if self.progress < o.source_share:
            return "source"
        return "pixel" if self.progress < o.source_share + o.pixel_share else "feature"

    def restorer_frozen(self, step: int) -> bool:
        return self.stage() == "pixel"

    def lr_scale(self) -> float:
        return self.options.feature_lr_scale if self.stage() == "feature" else 1.0

    def forward(self, batch, lam):
        stage = self.stage()
        if stage == "source":
            sup = self.supervised(self.restorer(batch.synthetic), batch.clean)
            self.tap.take()
            return {"total": sup, "sup": sup}
        return self._pixel(batch) if stage == "pixel" else self._feature(batch, lam)

    def _pixel(self, batch) -> dict[str, torch.Tensor]:
        """CycleGAN with task consistency through the fixed source restorer."""
        x_s, x_r = batch.synthetic, batch.real
        s2r, r2s = self.to_real(x_s), self.to_synthetic(x_r)
        cycle = (F.l1_loss(self.to_synthetic(s2r), x_s) + F.l1_loss(self.to_real(r2s), x_r)) / 2
        with torch.no_grad():  # what translation must not change
            fixed = self.restorer(torch.cat([x_s, x_r]))
        translated = self.restorer(torch.cat([s2r, r2s]))  # the restorer is frozen: this reaches the generators
        self.tap.take()
        consistency = self.supervised(translated, fixed)
        disc = (gan_loss(self.judge_real(x_r), True) + gan_loss(self.judge_real(s2r.detach()), False)
                + gan_loss(self.judge_synthetic(x_s), True) + gan_loss(self.judge_synthetic(r2s.detach()), False)) / 4
        fool = (gan_loss(frozen(self.judge_real, s2r), True) + gan_loss(frozen(self.judge_synthetic, r2s), True)) / 2
        o = self.options
        total = o.cycle_weight * cycle + o.consistency_weight * consistency + disc + fool
        return {"total": total, "cycle": cycle.detach(), "consistency": consistency.detach(),
                "disc": disc.detach(), "fool": fool.detach()}

    def _feature(self, batch, lam) -> dict[str, torch.Tensor]:
        """The restorer on translated synthetic pairs, its features aligned with the real ones."""
        x_s, x_r = batch.synthetic, batch.real
        n = x_s.shape[0]
        with torch.no_grad():
            s2r = self.to_real(x_s)
        restored = self.restorer(torch.cat([s2r, x_r]))  # one pass: features of both domains
        sup = self.supervised(restored[:n], batch.clean)
        feature = domain_loss(self.classifiers, self.tap.take(), n, lam, self.options.normalize_features)
        return {"total": sup + feature, "sup": sup, "feature": feature.detach()}
