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

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from noiseda.device import host_to_device
from noiseda.errors import NoisedaError
from noiseda.methods.base import Batch, Method, TableRow, method_class, read_options, register_method, scale_grad
from noiseda.methods.noise_da.diffusion import GammaSchedule, NoisePredictor


def swap_slots(a: torch.Tensor, b: torch.Tensor, coins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: (a, b) where the coin is False, (b, a) where it is True."""
    m = coins.view(-1, *([1] * (a.dim() - 1)))
    return torch.where(m, b, a), torch.where(m, a, b)


@dataclass
class NoiseDAOptions:
    t_range: list[int] = field(default_factory=lambda: [1, 999])  # inclusive, 1 <= t <= num_timesteps-1
    channel_shuffle: bool = True
    residual_swap: bool = True
    condition: str = "both"  # both | synthetic | real: what fills the two condition slots
    margin: float = 0.1  # of the residual-swapping hinge
    # Not in the paper: for the first N steps the noise loss trains the diffusion net only (at
    # weight lambda_weight from step 1); the restorer receives lambda of it, ramped from step N.
    diffusion_warmup_steps: int = 0
    # During that warm-up the restorer is not updated at all (no supervised step either): for
    # adapting a trained restorer (train.init), whose outputs condition the diffusion net as it learns.
    warmup_freezes_restorer: bool = False


def noise_da_options(cfg) -> NoiseDAOptions:
    """noise-da's options in ``cfg`` (its defaults when ``cfg`` trains another method): the
    diagnostics read the t range and the conditions from here."""
    cls = method_class(cfg.method.name)
    cls = cls if issubclass(cls, NoiseDA) else NoiseDA
    return read_options(cls, cfg.method.options.get(cls.name, {}))


@register_method("noise-da")
class NoiseDA(Method):
    """The paper's method: both restored outputs condition a diffusion net whose noise loss pulls them toward clean images."""

    streams = ("synthetic", "real")
    lambda_role = "weight of the noise-space loss in the restorer's total"
    table = TableRow(space="noise", trained_on="both", paper="34.71 / 0.9202 / 0.0903", order=80)
    Options = NoiseDAOptions
    unpaired_target = False  # the diffusion net's target: the synthetic pair's clean image

    def __init__(self, cfg, restorer):
        super().__init__(cfg, restorer)
        self.diffusion = NoisePredictor(cfg.diffusion)
        self.schedule = GammaSchedule(cfg.diffusion)
        # "Ex" drops residual swapping by definition.
        self.residual_swap = self.options.residual_swap and not self.unpaired_target

    @classmethod
    def check_config(cls, cfg, o) -> None:
        where = f"config method.options.{cls.name}"
        if o.condition not in ("both", "synthetic", "real"):
            raise NoisedaError(f"{where}.condition: expected both|synthetic|real, got {o.condition!r}")
        if o.condition != "both" and (o.channel_shuffle or o.residual_swap):
            raise NoisedaError(f"{where}.condition={o.condition} fills both slots with one domain: set "
                               "channel_shuffle=false and residual_swap=false")
        last = cfg.diffusion.num_timesteps - 1
        if len(o.t_range) != 2 or not (1 <= o.t_range[0] <= o.t_range[1] <= last):
            raise NoisedaError(f"{where}.t_range: expected [lo, hi] with 1 <= lo <= hi <= {last}, got {o.t_range}")
        if o.diffusion_warmup_steps < 0:
            raise NoisedaError(f"{where}.diffusion_warmup_steps: expected >= 0, got {o.diffusion_warmup_steps}")
        if o.diffusion_warmup_steps and cfg.method.lambda_weight <= 0:
            raise NoisedaError(f"{where}.diffusion_warmup_steps needs method.lambda_weight > 0 "
                               "(the weight the diffusion net learns at)")
        if o.warmup_freezes_restorer and not o.diffusion_warmup_steps:
            raise NoisedaError(f"{where}.warmup_freezes_restorer freezes the restorer during the diffusion net's "
                               "warm-up: set diffusion_warmup_steps > 0")

    # -- hooks of the training loop ---------------------------------------------------------
    def parameter_groups(self, train_cfg) -> list[dict]:
        """The restorer at train.lr, the diffusion net at train.diffusion_lr (0: train.lr, one group)."""
        if not train_cfg.diffusion_lr:
            return super().parameter_groups(train_cfg)
        return [{"params": list(self.restorer.parameters()), "lr": train_cfg.lr},
                {"params": list(self.diffusion.parameters()), "lr": train_cfg.diffusion_lr}]

    def nets_to_compile(self):
        return [self.restorer, self.diffusion]

    @property
    def lambda_delay(self) -> int:
        return self.options.diffusion_warmup_steps

    def restorer_frozen(self, step: int) -> bool:
        return self.options.warmup_freezes_restorer and step <= self.options.diffusion_warmup_steps

    def make_monitor(self, context):
        from noiseda.methods.noise_da.monitor import ShortcutMonitor

        return ShortcutMonitor(self, context, self.options.t_range)

    # -- the losses -------------------------------------------------------------------------
    def draw_coins(self, batch: int, device) -> torch.Tensor:
        return host_to_device(torch.rand(batch) < 0.5, device)

    def conditions(self, syn: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two condition slots, per the configured mode and channel shuffling."""
        mode = self.options.condition
        if mode == "synthetic":
            return syn, syn
        if mode == "real":
            return real, real
        if self.options.channel_shuffle:
            return swap_slots(syn, real, self.draw_coins(syn.shape[0], syn.device))
        return syn, real

    def diffusion_target(self, batch: Batch) -> torch.Tensor:
        return batch.reference if self.unpaired_target else batch.clean

    def forward(self, batch: Batch, lam: float):
        x_s = batch.synthetic
        n = x_s.shape[0]
        restored = self.restorer(torch.cat([x_s, batch.real]))  # one pass over both domains
        y_s, y_r = restored[:n], restored[n:]
        sup = self.supervised(y_s, batch.clean)
        weight = lam  # of the noise loss in the total: the reference scales both nets' share by lambda
        if self.options.diffusion_warmup_steps:
            # The diffusion net learns at the full weight from step 1 (0 while lam is still 0
            # would leave it untrained); the restorer receives lam of the noise loss's gradient.
            weight = self.cfg.method.lambda_weight
            y_s, y_r = scale_grad(y_s, lam / weight), scale_grad(y_r, lam / weight)
        out = self.noise_loss(batch, y_s, y_r)
        noise = out.pop("noise")
        return {"sup": sup, **out, "total": sup + weight * noise, "noise": noise.detach()}

    def noise_loss(self, batch: Batch, y_s: torch.Tensor, y_r: torch.Tensor) -> dict[str, torch.Tensor]:
        """The noise-space loss for restored outputs ``y_s`` (of batch.synthetic) and ``y_r`` (of
        batch.real): "noise" keeps its graph to both; the other entries are detached parts.
        Draws noise levels, noise, dropout and coins from torch's global generator."""
        x_s, x_r = batch.synthetic, batch.real
        n = x_s.shape[0]
        target = self.diffusion_target(batch)
        gamma = self.schedule.sample(n, tuple(self.options.t_range), target.device)
        eps = torch.randn(target.shape, device=target.device, dtype=target.dtype)  # same draws in any layout
        y_t = self.schedule.noise(target, gamma, eps)
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
        hinge = F.relu(mse_pos - mse_neg + self.options.margin)
        return {"noise": (mse_pos + hinge) / 2, "mse_neg": mse_neg.detach(), "hinge": hinge.detach(),
                "mse_pos": mse_pos.detach()}

    @torch.no_grad()
    def condition_losses(self, batch: Batch, gamma: torch.Tensor, eps: torch.Tensor) -> dict:
        """The diffusion loss on a fixed batch with the conditions as trained (synthetic
        restoration in slot 1, real in slot 2), then with the real slot holding the raw real
        input, then with the synthetic slot holding the raw synthetic input. If the real slot's
        content stops changing the loss, the diffusion net ignores the real condition (the
        shortcut of the paper's Fig. 2) and the real side gets no adaptation signal.
        ``gamma`` and ``eps`` are given, so that repeated readings are comparable."""
        x_s, x_r = batch.synthetic, batch.real
        y_s, y_r = self.restorer(x_s), self.restorer(x_r)
        y_t = self.schedule.noise(self.diffusion_target(batch), gamma, eps)

        def mse(c1, c2) -> float:
            return F.mse_loss(self.diffusion(y_t, c1, c2, gamma).float(), eps).item()

        return {"mse": mse(y_s, y_r), "mse_real_raw": mse(y_s, x_r), "mse_syn_raw": mse(x_s, y_r),
                "restored_real": y_r}


@register_method("noise-da-ex")
class NoiseDAEx(NoiseDA):
    """The unpaired variant: the diffusion net learns the distribution of unpaired clean images."""

    streams = ("synthetic", "real", "reference")
    table = TableRow(space="noise", trained_on="both + unpaired clean", paper="33.44 / 0.8938 / 0.1064", default=False, order=85)
    unpaired_target = True
