"""SwinIR (Liang et al., ICCVW 2021): residual Swin Transformer blocks at full resolution.

A 3x3 conv makes the shallow features; K residual Swin Transformer blocks (RSTB) make the
deep ones. An RSTB is N Swin Transformer layers (LayerNorm -> window self-attention over
8x8 windows with a learned relative position bias, every second layer shifting the windows
by half a window -> LayerNorm -> MLP: linear x2, GELU, linear back), then a 3x3 conv, plus
the block's input. After the RSTBs: LayerNorm, a 3x3 conv and the long skip from the shallow
features; a 3x3 conv back to the image adds the predicted residual (upscale 1, as SwinIR
does for denoising). Like the released code we LayerNorm the tokens before the first RSTB
and draw the linear weights from a truncated normal (std 0.02); we leave out drop path
(stochastic depth) and the fixed mean subtraction. Inputs are padded to a multiple of the
window and cropped back.

Settings: "swinir-denoise" is the paper's color denoising net (width 180, 6 RSTB x 6 layers,
6 heads); "swinir-light" its lightweight SR net (width 60, 4 RSTB x 6 layers, 6 heads) with a
conv to the image in place of the upsampler. Ours have 11.50M and 0.905M parameters, layer
for layer those of the released code (whose x4 upsampler makes the classical SR net's 11.9M).
The paper's lightweight 878K / 886K / 897K (x2 / x3 / x4) are our layers plus its upsampler
less the relative position bias tables (1,350 a layer). MACs: 800.3 G at 256x256 for
"swinir-denoise"; the authors give 788.0 G, their count taking the conv after the RSTBs as
3*C*C a pixel instead of 9*C*C.
"""

from __future__ import annotations

import torch
from torch import nn

from noiseda.nets.blocks import pad_to_multiple
from noiseda.nets.registry import NETS
from noiseda.nets.uformer import LeWinBlock


class SwinLayer(LeWinBlock):
    """Uformer's LeWin block (shifted windows, cached masks) with SwinIR's plain MLP as the
    feed-forward instead of the LeFF."""

    def __init__(self, dim: int, heads: int, win: int, shift: bool, mlp_ratio: float = 2.0):
        hidden = int(dim * mlp_ratio)
        mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        super().__init__(dim, heads, win, shift, feed_forward=mlp)


class RSTB(nn.Module):
    """Residual Swin Transformer block: Swin layers, a 3x3 conv, and the block's input added back."""

    def __init__(self, dim: int, depth: int, heads: int, win: int, mlp_ratio: float):
        super().__init__()
        self.layers = nn.Sequential(*(SwinLayer(dim, heads, win, i % 2 == 1, mlp_ratio) for i in range(depth)))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x C
        y = self.conv(self.layers(x).permute(0, 3, 1, 2))
        return x + y.permute(0, 2, 3, 1)


class SwinIR(nn.Module):
    def __init__(self, width: int = 16, depths=(2, 2), heads: int = 2, win: int = 8, mlp_ratio: float = 2.0,
                 in_channels: int = 3):
        super().__init__()
        if heads < 1 or win < 2 or width % heads:
            raise ValueError(f"swinir: width {width} must split into heads {heads} (>= 1), window {win} must be >= 2")
        self.config = {"width": width, "depths": list(depths), "heads": heads, "win": win, "mlp_ratio": mlp_ratio}
        self.size_multiple = win
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.intro_norm = nn.LayerNorm(width)  # the released code's "patch_norm"
        self.blocks = nn.Sequential(*(RSTB(width, d, heads, win, mlp_ratio) for d in depths))
        self.norm = nn.LayerNorm(width)
        self.body_conv = nn.Conv2d(width, width, 3, padding=1)
        self.last = nn.Conv2d(width, in_channels, 3, padding=1)
        for m in self.modules():  # the attention and MLP weights start small, as in the released code
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.size_multiple)
        shallow = self.intro(padded)
        y = self.blocks(self.intro_norm(shallow.permute(0, 2, 3, 1)))
        y = self.body_conv(self.norm(y).permute(0, 3, 1, 2)) + shallow
        return x + self.last(y)[..., :h, :w]


@NETS.register("swinir-denoise")
def swinir_denoise(**kw) -> SwinIR:
    """The paper's color denoising setting."""
    return SwinIR(width=180, depths=(6,) * 6, heads=6, win=8, mlp_ratio=2.0, **kw)


@NETS.register("swinir-light")
def swinir_light(**kw) -> SwinIR:
    """The paper's lightweight SR setting, with a conv to the image instead of the upsampler."""
    return SwinIR(width=60, depths=(6,) * 4, heads=6, win=8, mlp_ratio=2.0, **kw)


@NETS.register("swinir")
def swinir(width: int = 16, depths=(2, 2), heads: int = 2, win: int = 8, **kw) -> SwinIR:
    """Any width, depths (layers per RSTB), heads and window; the default is a small one for CPUs."""
    return SwinIR(width=width, depths=tuple(depths), heads=heads, win=win, **kw)
