"""Parameter and MAC counts (MACs = FLOPs / 2 from torch's flop counter: convs and matmuls)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def count_macs(net: nn.Module, size: int = 128, channels: int = 3) -> int:
    """MACs of one size x size image, counted on a copy of the net on the meta device: nothing
    is computed, so memory and time do not grow with the size (tracing the seven nets takes
    seconds), and attention runs through the composite
    matmuls that the counter sees (CPU fused attention kernels would go uncounted)."""
    meta = copy.deepcopy(net).to("meta").eval()
    x = torch.zeros(1, channels, size, size, device="meta")
    with FlopCounterMode(display=False) as counter:
        meta(x)
    return counter.get_total_flops() // 2
