"""Parameter and MAC counts (MACs = FLOPs / 2 from torch's flop counter: convs and matmuls)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def count_macs(net: nn.Module, size: int = 128, channels: int = 3) -> int:
    x = torch.zeros(1, channels, size, size)
    with FlopCounterMode(display=False) as counter:
        net.eval()(x)
    return counter.get_total_flops() // 2
