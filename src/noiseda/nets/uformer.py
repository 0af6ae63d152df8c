"""Uformer (Wang et al., CVPR 2022): a U-shaped transformer of LeWin blocks.

LeWin block: LayerNorm -> window self-attention (non-overlapping 8x8 windows, learned
relative position bias; every second block shifts the windows by half a window) ->
LayerNorm -> LeFF (linear x4, GELU, 3x3 depthwise conv, GELU, linear back); Uformer-B's decoder blocks
also add a learned "modulator" to each window before attention. Encoder levels
at C, 2C, 4C, 8C channels with 4x4 stride-2 convs down, a bottleneck at 16C, and decoder
levels that upsample with 2x2 transposed convs to half the channels, concatenate the skip and
run at twice the channels of the matching encoder level. A 3x3 conv + LeakyReLU makes the
tokens, a 3x3 conv from 2C back to the image adds the predicted residual. Inputs are padded
to a multiple of 128 (8x8 windows at 1/16 scale) and cropped back.

Sizes equal the Uformer paper's (5.23M / 20.63M / 50.88M for T / S / B). The
Denoising-as-Adaptation paper's table lists 9.50M / 21.38M / 53.58M and 15.49 / 34.76 / 86.97
GMACs for its Uformer-T/S/B: all six numbers are those of the convolutional UNet baseline in
the Uformer authors' code (one conv block per level) at widths 32 / 48 / 76 and 256x256
inputs, not of any Uformer setting; the DA authors' released code trains its U-Net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.nets.blocks import Attention, pad_to_multiple
from noiseda.nets.registry import NETS


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """B x H x W x C -> (B * windows) x (w*w) x C."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _unwindows(x: torch.Tensor, w: int, b: int, h: int, wd: int) -> torch.Tensor:
    c = x.shape[-1]
    x = x.view(b, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, c)


_MASKS: dict = {}  # (h, w, win, shift, device) -> mask, shared by all layers; a few sizes kept


def shifted_window_mask(h: int, w: int, win: int, shift: int, device) -> torch.Tensor:
    """windows x (win*win) x (win*win): -inf between pixels that the cyclic shift brought
    together from opposite image borders, 0 elsewhere. Built once per size and shared by every
    layer (at 512x512 one mask is 67 MB; a SwinIR has 18 shifted layers)."""
    key = (h, w, win, shift, str(device))
    if key not in _MASKS:
        if len(_MASKS) >= 4:
            _MASKS.pop(next(iter(_MASKS)))
        with torch.inference_mode(False):  # a normal tensor, usable by training later too
            region = torch.zeros(1, h, w, 1, device=device)
            n = 0
            for hs in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
                for ws in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
                    region[:, hs, ws, :] = n
                    n += 1
            ids = _windows(region, win).squeeze(-1)
            diff = ids[:, None, :] - ids[:, :, None]
            _MASKS[key] = torch.zeros_like(diff).masked_fill(diff != 0, float("-inf"))
    return _MASKS[key]


class WindowAttention(Attention):
    def __init__(self, dim: int, heads: int, win: int):
        super().__init__()
        self.heads, self.win, self.scale = heads, win, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * win - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(win), torch.arange(win), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (win - 1)
        self.register_buffer("bias_index", rel[..., 0] * (2 * win - 1) + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_table[self.bias_index.view(-1)].view(t, t, self.heads).permute(2, 0, 1).to(q.dtype)
        attn = bias[None].expand(n, -1, -1, -1)  # a view: cast before expanding, not after
        if mask is not None:  # shifted windows: no attention across the wrapped image borders
            attn = (attn.view(-1, mask.shape[0], self.heads, t, t) + mask[None, :, None].to(q.dtype)
                    ).view(n, self.heads, t, t)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(n, t, c))


class LeFF(nn.Module):
    """Locally-enhanced feed-forward: a depthwise 3x3 conv between the two linear layers."""

    def __init__(self, dim: int, ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x C
        y = F.gelu(self.fc1(x)).permute(0, 3, 1, 2)
        y = F.gelu(self.dw(y)).permute(0, 2, 3, 1)
        return self.fc2(y)


class LeWinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, win: int, shift: bool, mlp_ratio: float = 4.0, modulator: bool = False,
                 feed_forward: nn.Module | None = None):
        super().__init__()
        self.win, self.shift = win, win // 2 if shift else 0
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, win)
        self.leff = feed_forward if feed_forward is not None else LeFF(dim, mlp_ratio)  # SwinIR: its MLP
        # Uformer-B's decoders: a learned bias per window position added before attention
        self.modulator = nn.Parameter(torch.randn(win * win, dim)) if modulator else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x C, H and W multiples of win
        b, h, w, c = x.shape
        y = self.norm1(x)
        shifted = self.shift and min(h, w) > self.win
        if shifted:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        mask = shifted_window_mask(h, w, self.win, self.shift, x.device) if shifted else None
        windows = _windows(y, self.win)
        if self.modulator is not None:
            windows = windows + self.modulator
        y = _unwindows(self.attn(windows, mask), self.win, b, h, w)
        if shifted:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.leff(self.norm2(x))


class Stage(nn.Sequential):
    def __init__(self, dim: int, depth: int, heads: int, win: int, modulator: bool = False):
        super().__init__(*(LeWinBlock(dim, heads, win, shift=i % 2 == 1, modulator=modulator) for i in range(depth)))


class Uformer(nn.Module):
    def __init__(self, width: int = 16, depths=(2, 2, 2, 2), bottleneck_depth: int = 2, win: int = 8,
                 modulator: bool = False, in_channels: int = 3):
        super().__init__()
        levels = len(depths)
        if width < 1 or win < 2:
            raise ValueError(f"uformer: width must be >= 1 and the window >= 2, got {width} and {win}")
        self.config = {"width": width, "depths": list(depths), "bottleneck_depth": bottleneck_depth, "win": win,
                       "modulator": modulator}
        self.win, self.size_multiple = win, win * 2**levels
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        dims = [width * 2**i for i in range(levels)]
        for d, depth in zip(dims, depths):
            self.encoders.append(Stage(d, depth, max(d // width, 1), win))
            self.downs.append(nn.Conv2d(d, 2 * d, 4, stride=2, padding=1))
        top = 2 * dims[-1]
        self.bottleneck = Stage(top, bottleneck_depth, top // width, win)
        c = top
        for d, depth in zip(reversed(dims), reversed(depths)):
            self.ups.append(nn.ConvTranspose2d(c, d, 2, stride=2))
            c = 2 * d  # after concatenating the skip
            self.decoders.append(Stage(c, depth, c // width, win, modulator))
        self.last = nn.Conv2d(c, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.size_multiple)
        y = F.leaky_relu(self.intro(padded), 0.2)
        skips = []
        for stage, down in zip(self.encoders, self.downs):
            y = stage(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            skips.append(y)
            y = down(y)
        y = self.bottleneck(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for stage, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            y = torch.cat([up(y), skip], dim=1)
            y = stage(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.last(y)[..., :h, :w]


@NETS.register("uformer-t")
def uformer_t(**kw) -> Uformer:
    return Uformer(width=16, depths=(2, 2, 2, 2), bottleneck_depth=2, **kw)


@NETS.register("uformer-s")
def uformer_s(**kw) -> Uformer:
    return Uformer(width=32, depths=(2, 2, 2, 2), bottleneck_depth=2, **kw)


@NETS.register("uformer-b")
def uformer_b(**kw) -> Uformer:
    return Uformer(width=32, depths=(1, 2, 8, 8), bottleneck_depth=2, modulator=True, **kw)


@NETS.register("uformer")
def uformer(width: int = 8, depths=(1, 1, 1, 1), bottleneck_depth: int = 1, **kw) -> Uformer:
    """Any width and depths (net.width sets the width); the default is a small one for CPUs."""
    return Uformer(width=width, depths=tuple(depths), bottleneck_depth=bottleneck_depth, **kw)
