"""Exponential moving average of the restorer's weights (the diffusion net is never kept)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, net: nn.Module, decay: float, warmup: bool = True):
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0

    def current_decay(self) -> float:
        n = self.updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        d = self.current_decay()
        ema = [p for p in self.net.parameters()]
        cur = [p.detach().to(e.dtype) for p, e in zip(net.parameters(), ema)]
        torch._foreach_lerp_(ema, cur, 1.0 - d)
        for b_ema, b in zip(self.net.buffers(), net.buffers()):
            b_ema.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.net.load_state_dict(state)
        self.updates = updates
