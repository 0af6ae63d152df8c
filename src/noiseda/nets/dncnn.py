"""DnCNN (Zhang et al., TIP 2017): a plain stack of 3x3 convs with batch norm that predicts the
noise, subtracted from the input (residual learning). Fully convolutional: any HxW."""

from __future__ import annotations

import torch
from torch import nn

from noiseda.nets.registry import NETS


class DnCNN(nn.Module):
    size_multiple = 1

    def __init__(self, depth: int = 17, width: int = 64, in_channels: int = 3):
        super().__init__()
        self.config = {"depth": depth, "width": width}
        layers = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.last = nn.Conv2d(width, in_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.last(self.body(x))


@NETS.register("dncnn")
def dncnn(depth: int = 17, width: int = 64, **kw) -> DnCNN:
    """The colour blind-denoising setting (CDnCNN-B uses depth 20; set it with net kwargs)."""
    return DnCNN(depth=depth, width=width, **kw)
