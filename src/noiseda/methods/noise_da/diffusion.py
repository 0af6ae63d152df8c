"""The diffusion side (training only): a conditional noise predictor and its schedule.

The predictor is diffusers' ``UNet2DModel`` set up as the reference's
guided-diffusion U-Net (the paper and the authors' reference code): 9 channels in
(noisy target + two conditions), 3 out, residual blocks that do the up- and
downsampling, FiLM (scale-shift) noise conditioning, one self-attention block
in the bottleneck. It is conditioned on the continuous noise level gamma
itself, embedded sinusoidally. With the paper-size defaults it has 62,643,075
parameters, as the reference has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.device import host_to_device

if TYPE_CHECKING:
    from noiseda.config import DiffusionConfig


class LowPrecisionGroupNorm(nn.GroupNorm):
    """GroupNorm that stays in bf16/fp16 under autocast. Autocast would run it in fp32, which
    doubles the memory traffic of every normalised activation and adds two casts per layer;
    PyTorch's kernel already accumulates the statistics in fp32 for low-precision inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)
        return super().forward(x)


class NearestUpsample2x(nn.Module):
    """x2 nearest-neighbour upsampling, as diffusers' ``Upsample2D(use_conv=False)`` does.
    Under torch.compile it is written as a broadcast copy: the compiler turns the backward of
    F.interpolate into atomic scatter-adds (14 ms of a 152 ms compiled noise-da step on an
    H100, benchmarks/results/speed-gpu-h100-run4.json), and a broadcast's backward into a plain
    sum of 2x2 blocks. Eager code keeps F.interpolate and its native kernels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        n, c, h, w = x.shape
        return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class NoisePredictor(nn.Module):
    def __init__(self, cfg: DiffusionConfig, image_channels: int = 3):
        super().__init__()
        from diffusers import UNet2DModel  # imported lazily: restoring never needs it
        from diffusers.models.resnet import ResnetBlock2D
        from diffusers.models.upsampling import Upsample2D

        levels = len(cfg.channel_mults)
        self.unet = UNet2DModel(
            in_channels=3 * image_channels,
            out_channels=image_channels,
            block_out_channels=tuple(cfg.base_width * m for m in cfg.channel_mults),
            layers_per_block=cfg.layers_per_block,
            down_block_types=("ResnetDownsampleBlock2D",) * levels,
            up_block_types=("ResnetUpsampleBlock2D",) * levels,
            mid_block_type="UNetMidBlock2D",
            add_attention=cfg.attention,
            attention_head_dim=cfg.attention_head_dim,
            norm_num_groups=cfg.norm_groups,
            # diffusers gives the bottleneck attention no GroupNorm under scale-shift conditioning
            # unless told; the reference normalises before qkv, and without it the attention
            # logits are saturated from the first step.
            attn_norm_num_groups=cfg.norm_groups,
            resnet_time_scale_shift="scale_shift",
            dropout=cfg.dropout,
            time_embedding_type="positional",
            flip_sin_to_cos=True,  # [cos, sin] with max period 1e4, as the reference's gamma embedding
            freq_shift=0,
        )
        self.size_multiple = 2 ** (levels - 1)
        for m in self.unet.modules():
            if type(m) is nn.GroupNorm:
                m.__class__ = LowPrecisionGroupNorm  # same parameters, same state dict
            up = getattr(m, "upsample", None)
            if isinstance(m, ResnetBlock2D) and isinstance(up, Upsample2D) and not (up.use_conv or up.use_conv_transpose):
                m.upsample = NearestUpsample2x()  # no parameters either way
        # The reference init: kaiming-normal (fan_in) weights and zero biases everywhere.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, y_t: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        # The default layout even when the restorer's outputs are channels-last (see noiseda.training.step).
        return self.unet(torch.cat([y_t, c1, c2], dim=1).contiguous(), gamma).sample


class GammaSchedule:
    """Linear betas; per sample t ~ U{t_lo..t_hi} and gamma ~ U(gammas[t], gammas[t-1]).

    ``gammas`` (cumulative products of 1 - beta, 0-based) come from diffusers'
    DDPMScheduler, so the table is the standard one.
    """

    def __init__(self, cfg: DiffusionConfig):
        from diffusers import DDPMScheduler

        sched = DDPMScheduler(
            num_train_timesteps=cfg.num_timesteps,
            beta_schedule="linear",
            beta_start=cfg.beta_start,
            beta_end=cfg.beta_end,
        )
        self.gammas = sched.alphas_cumprod.to(torch.float64)

    def sample(self, batch: int, t_range: tuple[int, int], device, generator=None) -> torch.Tensor:
        lo, hi = t_range
        t = torch.randint(lo, hi + 1, (batch,), generator=generator)
        g_hi, g_lo = self.gammas[t - 1], self.gammas[t]
        u = torch.rand(batch, generator=generator, dtype=torch.float64)
        return host_to_device((g_lo + u * (g_hi - g_lo)).float(), device)

    @staticmethod
    def noise(target: torch.Tensor, gamma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The forward process at noise level gamma (per sample): sqrt(gamma) x + sqrt(1 - gamma) eps."""
        g = gamma.view(-1, *([1] * (target.dim() - 1)))
        return g.sqrt() * target + (1 - g).sqrt() * eps

    def gamma_bounds(self, t_range: tuple[int, int]) -> tuple[float, float]:
        lo, hi = t_range
        return float(self.gammas[hi]), float(self.gammas[lo - 1])
