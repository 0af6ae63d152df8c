"""AP-BSN's restorer (Lee et al., CVPR 2022): a blind-spot net run through pixel-shuffle
downsampling (PD), with asymmetric strides and random-replacing refinement at test time.

- The blind-spot net (the authors' light dilated BSN, "DBSNl") has two branches: a 3x3 (or 5x5)
  convolution whose centre tap is zero, then residual 3x3 convolutions dilated by 2 (or 3) and
  1x1 convolutions. An output pixel's receptive field then never contains the same input pixel
  (offsets o + d*k with |o| < d are 0 only for o = 0, the masked tap), so the net cannot learn
  the identity and an L1 loss against the noisy input itself trains a denoiser for noise that is
  independent between pixels.
- PD with stride f splits an image into f x f sub-images (every f-th pixel), each padded; real
  camera noise, correlated between neighbours, is nearly independent between the pixels of a
  sub-image. Training uses f = 5 (breaks the correlation), restoring f = 2 (keeps more detail).
- Random-replacing refinement (R3): T times, a share p of the PD-restored image's pixels is
  replaced by the noisy ones and the blind-spot net runs on the whole image without PD; the T
  results are averaged. Its random masks come from a generator seeded per call, so restoring an
  image twice gives the same result.

The module does PD/R3 itself (training mode: PD at the training stride; eval mode: the test-time
procedure), so an exported AP-BSN restores through `noiseda restore` and `evaluate` with its
test-time procedure, whose settings net.json records with the net's other arguments.
Defaults are the authors' (width 128, 9 modules per branch, strides 5/2, PD padding 2, T 8, p 0.16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.nets.registry import NETS


class CentreMaskedConv2d(nn.Conv2d):
    """A convolution whose kernel's centre tap is always zero (in the forward, so its weight's
    gradient there is zero too)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__(channels, channels, kernel, padding=kernel // 2)
        mask = torch.ones_like(self.weight)
        mask[:, :, kernel // 2, kernel // 2] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
                                  nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _branch(channels: int, dilation: int, modules: int) -> nn.Sequential:
    """Masked (2d-1) x (2d-1) convolution, then residual convolutions dilated by d."""
    return nn.Sequential(
        CentreMaskedConv2d(channels, 2 * dilation - 1), nn.ReLU(),
        nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
        *(DilatedResidual(channels, dilation) for _ in range(modules)),
        nn.Conv2d(channels, channels, 1), nn.ReLU(),
    )


class BlindSpotNet(nn.Module):
    """Output pixel (i, j) never depends on input pixel (i, j)."""

    def __init__(self, channels: int = 3, width: int = 128, modules: int = 9):
        super().__init__()
        if width % 2:
            raise ValueError(f"width must be even, got {width}")
        self.head = nn.Sequential(nn.Conv2d(channels, width, 1), nn.ReLU())
        self.branches = nn.ModuleList([_branch(width, 2, modules), _branch(width, 3, modules)])
        self.tail = nn.Sequential(nn.Conv2d(2 * width, width, 1), nn.ReLU(), nn.Conv2d(width, width // 2, 1),
                                  nn.ReLU(), nn.Conv2d(width // 2, width // 2, 1), nn.ReLU())
        self.last = nn.Conv2d(width // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        return self.last(self.tail(torch.cat([branch(y) for branch in self.branches], dim=1)))


def pd_down(x: torch.Tensor, f: int, pad: int) -> torch.Tensor:
    """N x C x H x W (H, W multiples of f) -> a mosaic of the f x f sub-images x[..., i::f, j::f],
    each zero-padded by ``pad``: N x C x (H + 2 f pad) x (W + 2 f pad)."""
    n, c, h, w = x.shape
    subs = F.pixel_unshuffle(x, f).view(n, c, f, f, h // f, w // f)  # [.., i, j, y, x] = x[.., y*f+i, x*f+j]
    subs = F.pad(subs, (pad, pad, pad, pad))
    hs, ws = h // f + 2 * pad, w // f + 2 * pad
    return subs.permute(0, 1, 2, 4, 3, 5).reshape(n, c, f * hs, f * ws)


def pd_up(y: torch.Tensor, f: int, pad: int) -> torch.Tensor:
    """The inverse of ``pd_down`` (the padding dropped)."""
    n, c, fh, fw = y.shape
    hs, ws = fh // f, fw // f
    subs = y.reshape(n, c, f, hs, f, ws).permute(0, 1, 2, 4, 3, 5)
    if pad:
        subs = subs[..., pad:hs - pad, pad:ws - pad]
    return F.pixel_shuffle(subs.reshape(n, c * f * f, hs - 2 * pad, ws - 2 * pad), f)


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple))  # zeros, as the authors pad before PD


class APBSN(nn.Module):
    """The blind-spot net behind PD: training mode restores through PD at ``pd_train``, eval mode
    through PD at ``pd_test`` then R3 (``r3_steps`` masks of share ``r3_share``; 0 steps: none)."""

    identity_at_zero_last = False  # not residual: a blind-spot net cannot start as the identity

    def __init__(self, width: int = 128, modules: int = 9, pd_train: int = 5, pd_test: int = 2, pd_pad: int = 2,
                 r3_steps: int = 8, r3_share: float = 0.16, r3_seed: int = 0, channels: int = 3):
        super().__init__()
        if pd_train < 1 or pd_test < 1 or pd_pad < 0 or r3_steps < 0 or not 0 <= r3_share <= 1:
            raise ValueError("expected pd_train, pd_test >= 1, pd_pad >= 0, r3_steps >= 0, 0 <= r3_share <= 1")
        self.bsn = BlindSpotNet(channels, width, modules)
        self.pd_train, self.pd_test, self.pd_pad = pd_train, pd_test, pd_pad
        self.r3_steps, self.r3_share, self.r3_seed = r3_steps, r3_share, r3_seed

    @property
    def last(self) -> nn.Conv2d:
        """The output conv, by the nets' convention (``net.zero_init_last``)."""
        return self.bsn.last

    def through_pd(self, x: torch.Tensor, f: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if f == 1:
            return self._full(x)
        y = pd_up(self.bsn(pd_down(_pad_to(x, f), f, self.pd_pad)), f, self.pd_pad)
        return y[..., :h, :w]

    def _full(self, x: torch.Tensor) -> torch.Tensor:
        """The blind-spot net on the whole image, borders reflected by the PD padding."""
        p = self.pd_pad
        if not p:
            return self.bsn(x)
        return self.bsn(F.pad(x, (p, p, p, p), mode="reflect"))[..., p:-p, p:-p]

    def refine(self, x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """R3: the mean over ``r3_steps`` of the net on ``first`` with a random share of its
        values (each pixel and channel drawn alone, as the authors do) put back to the noisy input's."""
        g = torch.Generator(device="cpu").manual_seed(self.r3_seed)
        total = torch.zeros_like(first)
        for _ in range(self.r3_steps):
            keep_noisy = (torch.rand(x.shape, generator=g) < self.r3_share).to(x.device)
            total += self._full(torch.where(keep_noisy, x, first))
        return total / self.r3_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.through_pd(x, self.pd_train)
        first = self.through_pd(x, self.pd_test)
        return self.refine(x, first) if self.r3_steps else first


@NETS.register("ap-bsn")
def ap_bsn(**kw) -> APBSN:
    """The authors' AP-BSN: width 128, 9 modules per branch (3.7M parameters)."""
    return APBSN(width=128, modules=9, **kw)


@NETS.register("ap-bsn-s")
def ap_bsn_small(**kw) -> APBSN:
    """A CPU-sized AP-BSN (width 32, 3 modules per branch); the same procedure."""
    return APBSN(width=32, modules=3, **kw)


@NETS.register("apbsn")
def apbsn(width: int = 16, modules: int = 1, **kw) -> APBSN:
    """Any width and number of modules per branch (the default a tiny one, for tests)."""
    return APBSN(width=width, modules=modules, **kw)
