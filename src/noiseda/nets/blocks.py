"""Pieces several restoration nets share: padding to the nets' size multiple, a channel
LayerNorm for N x C x H x W maps, the encoder pass of an encoder-decoder, and the marker of
self-attention modules (what masked training masks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Base of the nets' self-attention modules. Their first input holds the tokens: N x T x C
    (window attention) or N x C x H x W (attention whose tokens are pixels or channels of a map).
    Methods find them by this class (masked training zeroes a share of their input tokens)."""


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right to a multiple of ``multiple`` (reflect where the image allows it)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel, computed in fp32 (as autocast runs
    nn.LayerNorm): bf16 means and variances would lose too much."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        mu = xf.mean(1, keepdim=True)
        var = (xf - mu).pow(2).mean(1, keepdim=True)
        y = (xf - mu) / (var + self.eps).sqrt() * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)


def encode(y: torch.Tensor, encoders: nn.ModuleList, downs: nn.ModuleList) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each encoder stage then its downsampling; returns the deepest map and the skips (one
    per stage, finest first)."""
    skips = []
    for enc, down in zip(encoders, downs):
        y = enc(y)
        skips.append(y)
        y = down(y)
    return y, skips
