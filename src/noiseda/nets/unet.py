"""The paper's restoration U-Net (as in the paper and the authors' reference code).

Four levels of widths C, 2C, 4C, 8C; two 3x3 conv + LeakyReLU(0.2) per level;
2x2 average pooling down; bilinear x2 + 3x3 conv up, concatenated with the
skip; no normalisation. Parameters: 2088 C^2 + 105 C + 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.nets.blocks import pad_to_multiple
from noiseda.nets.registry import NETS


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
    )


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv_up = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_block = _conv_block(2 * cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv_block(torch.cat([self.conv_up(x), skip], dim=1))


class UNet(nn.Module):
    size_multiple = 8

    def __init__(self, width: int = 64, in_channels: int = 3):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.config = {"width": width, "in_channels": in_channels}
        self.down_path = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down_path.append(_conv_block(cin, w))
            cin = w
        self.up_path = nn.ModuleList(_Up(widths[i], widths[i - 1]) for i in range(3, 0, -1))
        self.last = nn.Conv2d(width, in_channels, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The reference init: kaiming-normal (fan_in) weights, zero biases, last layer included
        # (build_net(..., zero_init_last=True) is the opt-in identity start).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.size_multiple)
        skips = []
        y = padded
        for i, block in enumerate(self.down_path):
            y = block(y)
            if i < len(self.down_path) - 1:
                skips.append(y)
                y = F.avg_pool2d(y, 2)
        for up in self.up_path:
            y = up(y, skips.pop())
        return x + self.last(y)[..., :h, :w]


@NETS.register("unet-t")
def unet_t(**kw) -> UNet:
    return UNet(width=32, **kw)


@NETS.register("unet-s")
def unet_s(**kw) -> UNet:
    return UNet(width=64, **kw)


@NETS.register("unet-b")
def unet_b(**kw) -> UNet:
    return UNet(width=76, **kw)


@NETS.register("unet")
def unet_custom(width: int = 16, **kw) -> UNet:
    """Any width, for tiny test and CPU presets."""
    return UNet(width=width, **kw)
