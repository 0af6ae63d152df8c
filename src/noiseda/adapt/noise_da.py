"""Noise-space domain adaptation (the paper), and its unpaired "Ex" variant.

Both restored outputs, y_s = R(x_s) and y_r = R(x_r), condition a diffusion
model that predicts the noise added to the clean target. Its loss reaches R
through the conditions (nothing is detached), pulling both outputs towards
the clean distribution. Two guards stop the diffusion model from reading the
answer off the pixel-aligned synthetic condition (a shortcut):
- channel shuffling: per sample, a coin decides which slot holds which output;
- residual swapping: negatives x_s + r_r and x_r + r_s must predict the noise
  worse than the positives by a margin (one hinge on the two batch means).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from noiseda.adapt import METHODS
from noiseda.adapt.base import Method, scale_grad
from noiseda.diffusion import GammaSchedule, NoisePredictor
from noiseda.step import host_to_device


def swap_slots(a: torch.Tensor, b: torch.Tensor, coins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: (a, b) where the coin is False, (b, a) where it is True."""
    m = coins.view(-1, *([1] * (a.dim() - 1)))
    return torch.where(m, b, a), torch.where(m, a, b)


class NoiseDA(Method):
    needs_real = True
    uses_lambda = True

    def __init__(self, cfg, restorer, unpaired_target: bool = False):
        super().__init__(cfg, restorer)
        self.diffusion = NoisePredictor(cfg.diffusion)
        self.schedule = GammaSchedule(cfg.diffusion)
        self.unpaired_target = unpaired_target
        self.needs_reference = unpaired_target
        m = cfg.method
        # "Ex" drops residual swapping by definition.
        self.residual_swap = m.residual_swap and not unpaired_target

    def draw_coins(self, batch: int, device) -> torch.Tensor:
        return host_to_device(torch.rand(batch) < 0.5, device)

    def conditions(self, syn: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two condition slots, per the configured mode and channel shuffling."""
        mode = self.cfg.method.condition
        if mode == "synthetic":
            return syn, syn
        if mode == "real":
            return real, real
        if self.cfg.method.channel_shuffle:
            return swap_slots(syn, real, self.draw_coins(syn.shape[0], syn.device))
        return syn, real

    def forward(self, batch, lam):
        m = self.cfg.method
        x_s = batch["syn_in"]
        n = x_s.shape[0]
        restored = self.restorer(torch.cat([x_s, batch["real"]]))  # one pass over both domains
        y_s, y_r = restored[:n], restored[n:]
        sup = self.supervised(y_s, batch["syn_gt"])
        weight = lam  # of the noise loss in the total: the reference scales both nets' share by lambda
        if m.diffusion_warmup_steps:
            # The diffusion net learns at the full weight from step 1 (0 while lam is still 0
            # would leave it untrained); the restorer receives lam of the noise loss's gradient.
            weight = m.lambda_weight
            y_s, y_r = scale_grad(y_s, lam / weight), scale_grad(y_r, lam / weight)
        out = self.noise_loss(batch, y_s, y_r)
        noise = out.pop("noise")
        return {"sup": sup, **out, "total": sup + weight * noise, "noise": noise.detach()}

    def noise_loss(self, batch, y_s: torch.Tensor, y_r: torch.Tensor) -> dict[str, torch.Tensor]:
        """The noise-space loss for restored outputs ``y_s`` (of batch["syn_in"]) and ``y_r`` (of
        batch["real"]): "noise" keeps its graph to both; the other entries are detached parts.
        Draws noise levels, noise, dropout and coins from torch's global generator."""
        m = self.cfg.method
        x_s, x_r = batch["syn_in"], batch["real"]
        n = x_s.shape[0]
        target = batch["ref"] if self.unpaired_target else batch["syn_gt"]
        gamma = self.schedule.sample(n, tuple(m.t_range), target.device)
        eps = torch.randn(target.shape, device=target.device, dtype=target.dtype)  # same draws in any layout
        g = gamma.view(-1, 1, 1, 1)
        y_t = g.sqrt() * target + (1 - g).sqrt() * eps
        c1, c2 = self.conditions(y_s, y_r)
        if not self.residual_swap:
            mse_pos = F.mse_loss(self.diffusion(y_t, c1, c2, gamma).float(), eps)
            return {"noise": mse_pos, "mse_pos": mse_pos.detach()}
        # Negatives swap the predicted residuals; positives and negatives share y_t, eps
        # and gamma and run as one batch (GroupNorm is per sample, so this equals two passes).
        n1, n2 = self.conditions(x_s + (y_r - x_r), x_r + (y_s - x_s))
        pred = self.diffusion(
            torch.cat([y_t, y_t]), torch.cat([c1, n1]), torch.cat([c2, n2]), torch.cat([gamma, gamma])
        )
        mse_pos = F.mse_loss(pred[:n].float(), eps)
        mse_neg = F.mse_loss(pred[n:].float(), eps)
        hinge = F.relu(mse_pos - mse_neg + m.margin)
        return {"noise": (mse_pos + hinge) / 2, "mse_neg": mse_neg.detach(), "hinge": hinge.detach(),
                "mse_pos": mse_pos.detach()}

    @torch.no_grad()
    def shortcut_probe(self, batch, gamma: torch.Tensor, eps: torch.Tensor) -> dict:
        """The diffusion loss on a probe batch with the conditions as trained (synthetic
        restoration in slot 1, real in slot 2), then with the real slot holding the raw real
        input, then with the synthetic slot holding the raw synthetic input. If the real slot's
        content stops changing the loss, the diffusion net ignores the real condition (the
        shortcut of the paper's Fig. 2) and the real side gets no adaptation signal.
        ``gamma`` and ``eps`` are given, so that repeated probes are comparable."""
        x_s, x_r = batch["syn_in"], batch["real"]
        y_s, y_r = self.restorer(x_s), self.restorer(x_r)
        target = batch["ref"] if self.unpaired_target else batch["syn_gt"]
        g = gamma.view(-1, 1, 1, 1)
        y_t = g.sqrt() * target + (1 - g).sqrt() * eps

        def mse(c1, c2) -> float:
            return F.mse_loss(self.diffusion(y_t, c1, c2, gamma).float(), eps).item()

        return {"mse": mse(y_s, y_r), "mse_real_raw": mse(y_s, x_r), "mse_syn_raw": mse(x_s, y_r),
                "restored_real": y_r}


@METHODS.register("noise-da")
def build(cfg, restorer):
    return NoiseDA(cfg, restorer)


@METHODS.register("noise-da-ex")
def build_ex(cfg, restorer):
    return NoiseDA(cfg, restorer, unpaired_target=True)
