"""GroupNorm for the diffusion net: low precision under autocast, and channels-last without copies.

PyTorch's CUDA GroupNorm (up to at least 2.11) only works on the default layout: a
channels-last input is copied to it on the way in and its gradient on the way back, and the
output comes back in the default layout, so the next convolution converts again. In the
62.6M diffusion net those copies were 35% of the GPU time of a channels-last noise-da step
(benchmarks/results/speed-gpu-h100-run2.json). ``channels_last_group_norm`` works on the
channels-last memory directly, seen as (N, HW, C): per-channel sums come from reductions
over HW that read the input once and accumulate in fp32, the output is one fused multiply-add
per element, and the backward pass is written out by hand (autograd through the elementwise
ops would store and re-read several full-size intermediates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pixels_by_channels(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W, C); a view when ``x`` is channels-last."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h * w, c)


def _channel_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per sample and channel, sum over pixels of a * b, in fp32; a, b: (N, HW, C).
    On GPUs in low precision, the diagonal of a^T b per sample: one batched matmul reads
    each operand once and accumulates in fp32 (the wasted off-diagonal work is small next
    to the convolutions around it). Elsewhere, or on a PyTorch without fp32 output for
    low-precision bmm, the product is summed."""
    if a.is_cuda and a.dtype in (torch.bfloat16, torch.float16):
        try:
            return torch.bmm(a.transpose(1, 2), b, out_dtype=torch.float32).diagonal(dim1=1, dim2=2)
        except (RuntimeError, TypeError):
            pass
    return (a * b).sum(1, dtype=torch.promote_types(a.dtype, torch.float32))


class _ChannelsLastGroupNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, eps: float):
        n, c = x.shape[:2]
        d = c // groups
        acc = torch.promote_types(x.dtype, torch.float32)  # statistics in fp32 (fp64 for fp64)
        xs = _pixels_by_channels(x)
        count = xs.shape[1] * d
        sum_x = xs.sum(1, dtype=acc).view(n, groups, d).sum(2)
        sum_xx = _channel_dot(xs, xs).view(n, groups, d).sum(2)
        mean = sum_x / count
        var = (sum_xx / count - mean * mean).clamp_min(0)
        rstd = (var + eps).rsqrt()
        w = weight.to(acc).view(1, groups, d)
        scale = rstd.unsqueeze(2) * w  # y = x * scale + shift, per (sample, channel)
        shift = bias.to(acc).view(1, groups, d) - mean.unsqueeze(2) * scale
        # One kernel that computes in fp32 and writes x's dtype (coefficients rounded to bf16
        # would double the output's error).
        y = torch.empty_like(x, memory_format=torch.channels_last)
        torch.addcmul(shift.view(n, c, 1, 1), x, scale.view(n, c, 1, 1), out=y)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        groups = ctx.groups
        n, c = x.shape[:2]
        d = c // groups
        dy = dy.contiguous(memory_format=torch.channels_last)
        xs, dys = _pixels_by_channels(x), _pixels_by_channels(dy)
        count = xs.shape[1] * d
        sum_dy = dys.sum(1, dtype=mean.dtype).view(n, groups, d)  # per (sample, group, channel)
        sum_dy_x = _channel_dot(dys, xs).view(n, groups, d)
        w = weight.to(mean.dtype).view(1, groups, d)
        m, r = mean.unsqueeze(2), rstd.unsqueeze(2)
        # With xhat = (x - mean) * rstd: dx = rstd * (w dy - mean_g(w dy) - xhat * mean_g(w dy xhat)).
        mean_wdy = (w * sum_dy).sum(2, keepdim=True) / count
        mean_wdy_xhat = (w * r * (sum_dy_x - m * sum_dy)).sum(2, keepdim=True) / count
        a = r * w  # dx = a * dy + b * x + c
        b = -r * r * mean_wdy_xhat
        c0 = -b * m - r * mean_wdy
        shape = (n, c, 1, 1)
        dx = torch.empty_like(x, memory_format=torch.channels_last)
        torch.addcmul(c0.expand(n, groups, d).reshape(shape), x, b.expand(n, groups, d).reshape(shape), out=dx)
        dx.addcmul_(dy, a.reshape(shape))
        dweight = (r * (sum_dy_x - m * sum_dy)).sum(0).reshape(c).to(weight.dtype)
        dbias = sum_dy.sum(0).reshape(c).to(weight.dtype)
        return dx, dweight, dbias, None, None


def channels_last_group_norm(x, groups: int, weight, bias, eps: float) -> torch.Tensor:
    return _ChannelsLastGroupNorm.apply(x, weight, bias, groups, eps)


class DiffusionGroupNorm(nn.GroupNorm):
    """GroupNorm that stays in bf16/fp16 under autocast, and runs channels-last inputs in place.

    Autocast would run it in fp32, which doubles the memory traffic of every normalised
    activation and adds two casts per layer; the statistics are accumulated in fp32 either
    way. Under torch.compile the built-in op is used: the compiler fuses it in any layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = x.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled(x.device.type)
        dtype = x.dtype if low else torch.promote_types(x.dtype, self.weight.dtype)
        if (x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
                and not torch.compiler.is_compiling()):
            with torch.autocast(x.device.type, enabled=False):
                return channels_last_group_norm(x.to(dtype), self.num_groups, self.weight.to(dtype),
                                                self.bias.to(dtype), self.eps)
        if low:
            with torch.autocast(x.device.type, enabled=False):
                return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)
        return super().forward(x)
