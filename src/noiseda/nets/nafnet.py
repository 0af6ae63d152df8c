"""NAFNet (Chen et al., ECCV 2022): a U-Net of "nonlinear activation free" blocks.

Each block: LayerNorm -> 1x1 conv (x2 channels) -> 3x3 depthwise conv -> SimpleGate (split
the channels in two halves and multiply them) -> simplified channel attention -> 1x1 conv,
then a second LayerNorm -> 1x1 conv (x2) -> SimpleGate -> 1x1 conv feed-forward; both
branches are added back with learned per-channel scales that start at zero. Strided 2x2
convs go down (channels x2), 1x1 conv + pixel shuffle go up (channels / 2), skips are added.
The output is the input plus the predicted residual.
"""

from __future__ import annotations

import torch
from torch import nn

from noiseda.nets.blocks import encode, LayerNorm2d, pad_to_multiple
from noiseda.nets.registry import NETS


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int, expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = c * expand
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.conv4 = nn.Conv2d(c, ffn_expand * c, 1)
        self.conv5 = nn.Conv2d(ffn_expand * c // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = simple_gate(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(simple_gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    def __init__(self, width: int = 16, enc_blocks=(1, 1, 1, 1), middle_blocks: int = 1, dec_blocks=(1, 1, 1, 1),
                 in_channels: int = 3):
        super().__init__()
        self.config = {"width": width, "enc_blocks": list(enc_blocks), "middle_blocks": middle_blocks,
                       "dec_blocks": list(dec_blocks)}
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.last = nn.Conv2d(width, in_channels, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        c = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*(NAFBlock(c) for _ in range(middle_blocks)))
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(c) for _ in range(n))))
        self.size_multiple = 2 ** len(enc_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.size_multiple)
        y, skips = encode(self.intro(padded), self.encoders, self.downs)
        y = self.middle(y)
        for dec, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            y = dec(up(y) + skip)
        return x + self.last(y)[..., :h, :w]


@NETS.register("nafnet-32")
def nafnet_32(**kw) -> NAFNet:
    """The SIDD denoising setting of the paper with width 32."""
    return NAFNet(width=32, enc_blocks=(2, 2, 4, 8), middle_blocks=12, dec_blocks=(2, 2, 2, 2), **kw)


@NETS.register("nafnet")
def nafnet(width: int = 16, enc_blocks=(1, 1, 1, 1), middle_blocks: int = 1, dec_blocks=(1, 1, 1, 1), **kw) -> NAFNet:
    """Any width and block counts (net.width sets the width); the default is a small one for CPUs."""
    return NAFNet(width=width, enc_blocks=tuple(enc_blocks), middle_blocks=middle_blocks,
                  dec_blocks=tuple(dec_blocks), **kw)
