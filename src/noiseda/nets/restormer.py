"""Restormer (Zamir et al., CVPR 2022): a U-shaped transformer whose attention runs across
channels instead of pixels, so its cost grows linearly with the image size.

Transformer block: LayerNorm -> MDTA (multi-Dconv head transposed attention: 1x1 then 3x3
depthwise convs make q, k, v; q and k are L2-normalised over the pixels and a learned
per-head temperature scales the C x C attention map) -> LayerNorm -> GDFN (gated-Dconv
feed-forward: 1x1 conv to 2 x 2.66C, 3x3 depthwise conv, GELU(one half) * other half, 1x1
conv back). Four levels at C, 2C, 4C, 8C with 4, 6, 6, 8 blocks and 1, 2, 4, 8 heads;
down = 3x3 conv to C/2 + pixel unshuffle, up = 3x3 conv to 2C + pixel shuffle; decoder
levels 3 and 2 reduce the concatenated skip with a 1x1 conv, level 1 keeps 2C channels and
is followed by 4 refinement blocks. No conv has a bias. The output is the input plus the
predicted residual. Inputs are padded to a multiple of 8 and cropped back.

The published setting (C=48) has 26.13M parameters; ours is exactly that (`noiseda nets`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.nets.blocks import Attention, encode, LayerNorm2d, pad_to_multiple
from noiseda.nets.registry import NETS


class TransposedAttention(Attention):
    """MDTA: attention between channels within each head (a C/heads x C/heads map)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"restormer: {dim} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.qkv_dw = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=False)
        self.proj = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).view(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.proj((attn @ v).view(b, c, h, w))


class GatedFeedForward(nn.Module):
    """GDFN: a GELU-gated depthwise-conv feed-forward."""

    def __init__(self, dim: int, expansion: float):
        super().__init__()
        hidden = int(dim * expansion)
        self.proj_in = nn.Conv2d(dim, 2 * hidden, 1, bias=False)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=False)
        self.proj_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dw(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(gate) * value)


class RestormerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(dim, eps=1e-5), LayerNorm2d(dim, eps=1e-5)
        self.attn = TransposedAttention(dim, heads)
        self.ffn = GatedFeedForward(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(dim: int, n: int, heads: int, expansion: float) -> nn.Sequential:
    return nn.Sequential(*(RestormerBlock(dim, heads, expansion) for _ in range(n)))


class Restormer(nn.Module):
    def __init__(self, width: int = 48, blocks=(4, 6, 6, 8), refinement_blocks: int = 4, heads=(1, 2, 4, 8),
                 expansion: float = 2.66, in_channels: int = 3):
        super().__init__()
        if len(blocks) != 4 or len(heads) != 4:
            raise ValueError("restormer: blocks and heads need one entry per level (4)")
        if width < 2 or width % 2 or min(heads) < 1:  # the downsampler halves the channels
            raise ValueError(f"restormer: width must be even and heads >= 1, got width {width}, heads {list(heads)}")
        self.config = {"width": width, "blocks": list(blocks), "refinement_blocks": refinement_blocks,
                       "heads": list(heads), "expansion": expansion}
        self.size_multiple = 8
        dims = [width * 2**i for i in range(4)]
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(_stage(d, n, h, expansion) for d, n, h in zip(dims[:3], blocks, heads))
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, d // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2)) for d in dims[:3])
        self.latent = _stage(dims[3], blocks[3], heads[3], expansion)
        # decoders from the deepest level up: levels 3 and 2 reduce [up, skip] back to their width
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, 2 * d, 3, padding=1, bias=False), nn.PixelShuffle(2)) for d in dims[:0:-1])
        self.reduces = nn.ModuleList([nn.Conv2d(2 * dims[2], dims[2], 1, bias=False),
                                      nn.Conv2d(2 * dims[1], dims[1], 1, bias=False), nn.Identity()])
        dec_dims = [dims[2], dims[1], 2 * dims[0]]
        self.decoders = nn.ModuleList(
            _stage(d, n, h, expansion) for d, n, h in zip(dec_dims, blocks[2::-1], heads[2::-1]))
        self.refinement = _stage(2 * width, refinement_blocks, heads[0], expansion)
        self.last = nn.Conv2d(2 * width, in_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.size_multiple)
        y, skips = encode(self.intro(padded), self.encoders, self.downs)
        y = self.latent(y)
        for up, reduce, dec, skip in zip(self.ups, self.reduces, self.decoders, reversed(skips)):
            y = dec(reduce(torch.cat([up(y), skip], dim=1)))
        return x + self.last(self.refinement(y))[..., :h, :w]


@NETS.register("restormer-48")
def restormer_48(**kw) -> Restormer:
    """The published setting (denoising, deraining and deblurring alike)."""
    return Restormer(width=48, blocks=(4, 6, 6, 8), refinement_blocks=4, heads=(1, 2, 4, 8), **kw)


@NETS.register("restormer")
def restormer(width: int = 8, blocks=(1, 1, 1, 1), refinement_blocks: int = 1, heads=(1, 1, 2, 2), **kw) -> Restormer:
    """Any width, block and head counts (net.width sets the width); the default is a small one for CPUs."""
    return Restormer(width=width, blocks=tuple(blocks), refinement_blocks=refinement_blocks, heads=tuple(heads), **kw)
