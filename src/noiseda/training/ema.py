"""Exponential moving average of the restorer's weights (the diffusion net is never kept)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """The update count lives on the device with the weights, so that a skipped (non-finite)
    step can be left out without the host waiting for the GPU to know it was non-finite."""

    def __init__(self, net: nn.Module, decay: float, warmup: bool = True):
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        self.count = torch.zeros((), dtype=torch.float64)

    def to(self, device) -> "EMA":
        self.net.to(device)
        self.count = self.count.to(device)
        return self

    @property
    def updates(self) -> int:
        return int(self.count.item())

    def _decay(self) -> torch.Tensor:
        n = self.count
        d = torch.full_like(n, self.decay)
        return torch.minimum(d, (1 + n) / (10 + n)) if self.warmup else d

    def current_decay(self) -> float:
        return float(self._decay())

    @torch.no_grad()
    def update(self, net: nn.Module, ok: torch.Tensor | None = None) -> None:
        """ema += (1 - decay) * (net - ema); with ``ok`` False (a tensor) nothing changes."""
        weight = 1.0 - self._decay()
        if ok is not None:
            weight = weight * ok
        ema = list(self.net.parameters())
        delta = torch._foreach_sub([p.detach().to(e.dtype) for p, e in zip(net.parameters(), ema)], ema)
        torch._foreach_mul_(delta, weight.float())
        torch._foreach_add_(ema, delta)
        for b_ema, b in zip(self.net.buffers(), net.buffers()):
            b_ema.copy_(b)
        self.count += 1 if ok is None else ok.double()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.net.load_state_dict(state)
        self.count.fill_(updates)
