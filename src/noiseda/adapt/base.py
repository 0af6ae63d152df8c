"""What every adaptation method shares: the restorer, the supervised loss, lambda."""

from __future__ import annotations

import math

import torch
from torch import nn


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def lambda_at(step: int, weight: float, slope: float, ramp_steps: int) -> float:
    """DANN-style ramp: weight * (2 / (1 + exp(-slope * p)) - 1), p = min(step / ramp, 1)."""
    p = min(step / max(ramp_steps, 1), 1.0)
    return weight * (2.0 / (1.0 + math.exp(-slope * p)) - 1.0)


class Method(nn.Module):
    """Base: holds the restorer; subclasses add training-only parts and losses."""

    #: which batch entries the method reads besides the synthetic pair
    needs_real: bool = False
    needs_reference: bool = False

    def __init__(self, cfg, restorer: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.restorer = restorer

    def supervised(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier(restored, target, self.cfg.method.charbonnier_eps)

    def forward(self, batch: dict[str, torch.Tensor], lam: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``scale``."""
    return _ScaleGrad.apply(x, scale)
