"""Restorers with no training set: each image is restored by an optimisation of its own.

SelfDeblur (Ren et al., CVPR 2020), the paper's blind-deblurring comparison: two generators
fitted to one blurry image y, an image generator G_x (a deep-image-prior encoder-decoder from a
fixed random input) and a kernel generator G_k (a fully connected net from a fixed random code,
ending in a softmax, so the kernel is non-negative and sums to one). Their outputs are fitted so
that G_k * G_x (a "valid" convolution: G_x is k - 1 pixels larger than y) reproduces y: mean
squared error first, 1 - SSIM after ``ssim_after`` iterations, Adam at 1e-2 (image) and 1e-4
(kernel), halved at the ``milestones``; the random input of G_x is jittered at every iteration.
Colour images are deblurred on their luma (Y of YCbCr); the chroma of the blurry image is kept.
The defaults are the authors' release's for colour images (2500 iterations, halved at 1600,
1900 and 2200, SSIM after 500; 128 channels, 5 levels); on a CPU an image of 256 px takes
long: lower ``iterations`` and ``width`` to try it.

VDIP (Huo et al. 2023), its variational successor in the same table, is ``VDIP`` below.

A per-image restorer is an ``nn.Module`` like a trained one, so `noiseda restore` and
`noiseda evaluate` run it through the same paths (``--per-image selfdeblur`` or ``vdip``); it sees whole
images (never tiles: one kernel per image) and keeps the last image's kernel in ``last_kernel``.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.errors import NoisedaError
from noiseda.typed import read_dataclass

# ITU-R BT.601 (full range) luma and chroma, for splitting a colour image into what is deblurred
# (Y) and what is kept (Cb, Cr).
_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _TO_YCBCR.to(rgb), rgb)


def to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_TO_YCBCR.double()).to(ycbcr), ycbcr)


def ssim_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - SSIM (Gaussian window 11, sigma 1.5, per channel), differentiable."""
    g = torch.exp(-((torch.arange(11, dtype=a.dtype, device=a.device) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(a.shape[1], 1, 11, 11)

    def smooth(t):
        return F.conv2d(t, window, groups=a.shape[1])

    mu_a, mu_b = smooth(a), smooth(b)
    var_a, var_b, cov = smooth(a * a) - mu_a**2, smooth(b * b) - mu_b**2, smooth(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1 - s.mean()


class NonLocal(nn.Module):
    """Dot-product self-attention over positions (keys and values max-pooled by 2), added to the
    input through a 1x1 conv and a BatchNorm that starts at zero (the block starts as identity)."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 2, 1)
        self.query, self.key, self.value = (nn.Conv2d(channels, inner, 1) for _ in range(3))
        self.back = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.back[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # n, hw, c
        pooled = F.max_pool2d(x, 2) if min(h, w) >= 2 else x
        k, v = self.key(pooled).flatten(2), self.value(pooled).flatten(2).transpose(1, 2)
        y = torch.softmax(q @ k, dim=-1) @ v  # n, hw, c
        return x + self.back(y.transpose(1, 2).reshape(n, -1, h, w))


class ImagePrior(nn.Module):
    """G_x: a deep-image-prior encoder-decoder with skip connections, from ``in_channels`` of
    noise to ``out_channels`` in (0, 1). Each level: a strided 3x3 conv down, a non-local block
    (levels 3 and deeper), a 3x3 conv; a 1x1 skip branch of ``skip`` channels; on the way up,
    bilinear x2, the skip joined, BatchNorm, a 3x3 and a 1x1 conv. BatchNorm, LeakyReLU(0.2) and
    reflection padding throughout; a 1x1 conv and a sigmoid at the end (the authors' shape)."""

    def __init__(self, in_channels: int = 8, out_channels: int = 1, width: int = 128, skip: int = 16, levels: int = 5):
        super().__init__()

        def conv(cin, cout, k, stride=1):
            return [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]

        self.levels = levels
        self.down, self.skips, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin = in_channels
        for level in range(levels):
            self.skips.append(nn.Sequential(*conv(cin, skip, 1)))
            attention = [NonLocal(width)] if level >= 2 else []
            self.down.append(nn.Sequential(*conv(cin, width, 3, 2), *attention, *conv(width, width, 3)))
            cin = width
        for _ in range(levels):
            self.up.append(nn.Sequential(nn.BatchNorm2d(width + skip), *conv(width + skip, width, 3), *conv(width, width, 1)))
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        m = 2**self.levels
        z = F.pad(z, (0, -w % m, 0, -h % m), mode="reflect")  # every level halves exactly
        skips, x = [], z
        for down, skip in zip(self.down, self.skips):
            skips.append(skip(x))
            x = down(x)
        for up, s in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, s], dim=1))
        return torch.sigmoid(self.out(x))[..., :h, :w]


class KernelPrior(nn.Module):
    """G_k: code -> hidden layer -> k x k logits -> softmax (a kernel >= 0 that sums to 1)."""

    def __init__(self, kernel_size: int, code: int = 200, hidden: int = 1000):
        super().__init__()
        self.kernel_size = kernel_size
        self.body = nn.Sequential(nn.Linear(code, hidden), nn.ReLU6(), nn.Linear(hidden, kernel_size**2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        return F.softmax(self.body(z), dim=-1).view(1, 1, k, k)


@dataclass
class SelfDeblurOptions:
    kernel_size: int = 31  # side of the blur kernel, odd (the authors' default for colour images)
    iterations: int = 2500  # the authors' colour-image script (5000 on the grey Levin and Lai sets)
    milestones: list[int] = dataclasses.field(default_factory=lambda: [1600, 1900, 2200])  # lr x0.5
    ssim_after: int = 500  # iterations of squared error before 1 - SSIM (1000 on Levin)
    lr_image: float = 1e-2
    lr_kernel: float = 1e-4
    width: int = 128  # G_x's channels at every level
    levels: int = 5
    input_jitter: float = 1e-3  # std of the noise added to G_x's input at every iteration
    max_pixels: int = 2_000_000  # larger images are refused (memory: about 5 kB per pixel at width 128)
    seed: int = 0


def kernel_centre(kernel: torch.Tensor) -> tuple[int, int]:
    """The kernel's centre of mass, rounded: where the latent image lines up with the blurry one.
    Blind deconvolution cannot tell a kernel shifted by d from an image shifted by -d; the
    authors crop the latent image at the kernel's geometric centre, so their output can sit a
    few pixels off the input. Cropping at the mass centre keeps the output aligned (a deviation)."""
    k = kernel.shape[-1]
    grid = torch.arange(k, dtype=kernel.dtype)
    mass = kernel.sum().clamp_min(1e-12)
    top = int(torch.round((kernel.sum(1) * grid).sum() / mass))
    left = int(torch.round((kernel.sum(0) * grid).sum() / mass))
    return min(max(top, 0), k - 1), min(max(left, 0), k - 1)


class BlindDeconvolution(nn.Module):
    """What SelfDeblur and VDIP share: per image, an image generator G_x and a kernel generator
    G_k from fixed random inputs (seeded), fitted by ``_fit``; the output is G_x's image
    cropped to the input's size where the kernel has its mass (``kernel_centre``)."""

    per_image = True  # restore/evaluate give it whole images and no precision wrappers
    name = ""
    image_channels = (8, 1)  # G_x's input and output channels

    def __init__(self, options, progress: bool = False):
        super().__init__()
        if options.kernel_size < 1 or options.kernel_size % 2 == 0:
            raise NoisedaError(f"{self.name} kernel_size: expected an odd number >= 1, got {options.kernel_size}")
        if options.iterations < 1:
            raise NoisedaError(f"{self.name} iterations: expected >= 1, got {options.iterations}")
        self.options, self.progress = options, progress
        self.last_kernel: Optional[torch.Tensor] = None
        self.losses: list[float] = []  # the last image's loss at every iteration

    def _deblur(self, y: torch.Tensor) -> torch.Tensor:
        """y: 1 x C x H x W, C = G_x's output channels (or the first of them)."""
        o, k = self.options, self.options.kernel_size
        device = y.device
        g = torch.Generator().manual_seed(o.seed)
        h, w = y.shape[-2:]
        if min(h, w) < 11:  # the SSIM window
            raise NoisedaError(f"{self.name}: the image is {h}x{w} pixels; it needs at least 11x11")
        if h * w > o.max_pixels:  # G_x keeps width x (H + k) x (W + k) activations per layer for its gradient
            raise NoisedaError(f"{self.name}: the image is {w}x{h} pixels, over max_pixels {o.max_pixels}: crop or "
                               f"downscale it, or raise max_pixels (memory grows with the image)")
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(o.seed)
            image_net = ImagePrior(*self.image_channels, width=o.width, levels=o.levels).to(device)
            kernel_net = KernelPrior(k).to(device)
        z_x = (torch.rand(1, self.image_channels[0], h + k - 1, w + k - 1, generator=g) * 0.1).to(device)
        z_k = (torch.rand(1, 200, generator=g) * 0.1).to(device)
        opt = torch.optim.Adam([{"params": image_net.parameters(), "lr": o.lr_image},
                                {"params": kernel_net.parameters(), "lr": o.lr_kernel}])
        self.losses = []
        self._fit(y, image_net, kernel_net, z_x, z_k, opt, g)
        with torch.no_grad():  # the fitted generators once more, on their own inputs (BatchNorm on this image)
            sharp, kernel = image_net(z_x), kernel_net(z_k)
        self.last_kernel = kernel[0, 0].cpu()
        top, left = kernel_centre(self.last_kernel)
        return sharp[:, : y.shape[1], top : top + h, left : left + w].detach()

    def _fit(self, y, image_net, kernel_net, z_x, z_k, opt, g) -> None:
        raise NotImplementedError

    def _step(self, opt, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.losses.append(loss.item())

    def _steps(self, n: int, what: str = ""):
        from tqdm import tqdm

        return tqdm(range(n), disable=not self.progress, desc=what or self.name, unit="it", leave=False)


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The same kernel on every channel, "valid": the image is k - 1 pixels larger than the result."""
    c = image.shape[1]
    return F.conv2d(image, kernel.expand(c, 1, *kernel.shape[-2:]), groups=c)


class SelfDeblur(BlindDeconvolution):
    """SelfDeblur as a restorer: ``forward`` fits its two generators to each image it is given."""

    name = "selfdeblur"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x 3 x H x W in [0, 1]; each image is deblurred on its own, on its luma."""
        with torch.inference_mode(False), torch.enable_grad():
            ycc = to_ycbcr(x.detach().clone().float())
            luma = torch.cat([self._deblur(ycc[i : i + 1, :1]) for i in range(ycc.shape[0])])
            return to_rgb(torch.cat([luma, ycc[:, 1:]], dim=1)).to(x.dtype)

    def _fit(self, y, image_net, kernel_net, z_x, z_k, opt, g) -> None:
        o = self.options
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, o.milestones, 0.5)
        for step in self._steps(o.iterations):
            jitter = torch.randn(z_x.shape, generator=g).to(z_x.device) * o.input_jitter
            reblurred = blur(image_net(z_x + jitter), kernel_net(z_k))
            self._step(opt, F.mse_loss(reblurred, y) if step < o.ssim_after else ssim_loss(reblurred, y))
            sched.step()


@dataclass
class VDIPOptions:
    kernel_size: int = 31  # side of the blur kernel, odd
    warmup: int = 500  # iterations pulling the mean to the blurry image, the std to 0, the kernel to a box
    iterations: int = 5000  # after the warm-up
    milestones: list[int] = dataclasses.field(default_factory=lambda: [2000, 3000, 4000])  # lr x0.5
    ssim_after: int = 2000  # the variational objective before, 1 - SSIM of the mean's reblur after
    prior_weight: float = 0.1  # of the prior (KL) term, x0.1 every prior_decay_every iterations
    prior_decay_every: int = 1000
    kernel_weight: float = 10.0  # of the kernel's squared norm in the prior
    lr_image: float = 1e-2
    lr_kernel: float = 1e-4
    width: int = 128
    levels: int = 5
    max_pixels: int = 2_000_000  # larger images are refused (memory: about 5 kB per pixel at width 128)
    seed: int = 0


def _dv(t: torch.Tensor) -> torch.Tensor:
    return t[..., 1:, :] - t[..., :-1, :]


def _dh(t: torch.Tensor) -> torch.Tensor:
    return t[..., :, 1:] - t[..., :, :-1]


def vdip_likelihood(x: torch.Tensor, kernel: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The expected log-likelihood of the blurry image y for one sample x of the latent image:
    the reblur's squared error on the pixels (weight 1/2), their first differences (1/4 each
    direction), second differences (1/8 each of four) and the blurred first differences of x
    (1/4 each), per pixel of x."""
    reblurred = blur(x, kernel)
    first = [(_dv, 4.0), (_dh, 4.0)]
    second = [(lambda t: _dv(_dv(t)), 8.0), (lambda t: _dh(_dv(t)), 8.0),
              (lambda t: _dh(_dh(t)), 8.0), (lambda t: _dv(_dh(t)), 8.0)]
    e = (reblurred - y).pow(2).sum() / 2
    e = e + sum((d(reblurred) - d(y)).pow(2).sum() / wt for d, wt in first + second)
    e = e + sum((blur(d(x), kernel) - d(y)).pow(2).sum() / wt for d, wt in first)
    return -e / x[0].numel()


def vdip_prior(mean: torch.Tensor, std: torch.Tensor, kernel: torch.Tensor, kernel_weight: float) -> torch.Tensor:
    """The negative KL of the Gaussian posterior (mean, std) to a sparse gradient prior: its
    entropy (sum of log std) minus the expected squared gradients E[(dx)^2] = (d mean)^2 + the
    two variances, each divided by its own detached value (so the gradient is that of its
    logarithm: a sparsity-promoting prior), minus the kernel's squared norm."""
    var = std.pow(2)
    expected = [_dv(mean).pow(2) + var[..., 1:, :] + var[..., :-1, :],
                _dh(mean).pow(2) + var[..., :, 1:] + var[..., :, :-1]]
    h, w = mean.shape[-2:]
    spread = sum((p / (p.detach() + 1e-6)).sum() / 4 for p in expected) / ((h - 1) * (w - 1) * mean.shape[1])
    return std.log().sum() / mean[0].numel() - spread - kernel_weight * kernel.pow(2).sum() / 2


class VDIP(BlindDeconvolution):
    """VDIP (Huo et al. 2023): SelfDeblur's generators, made variational. G_x gives a mean and a
    standard deviation per pixel and colour; one reparameterised sample of the latent image per
    iteration enters the likelihood (``vdip_likelihood``), and a sparse prior on the image's
    gradients, with the kernel's squared norm, enters through ``vdip_prior``, weighted by
    ``prior_weight`` (x0.1 every ``prior_decay_every`` iterations). A warm-up first pulls the
    mean to the blurry image, the deviation to zero and the kernel to a box; after
    ``ssim_after`` iterations only 1 - SSIM of the mean's reblur counts. Colour images are
    deblurred in RGB with one kernel. As the authors' release computes it (its sparse-prior
    variant); the output is the mean, cropped where the kernel has its mass (as selfdeblur)."""

    name = "vdip"
    image_channels = (3, 6)  # G_x: mean (3) and standard deviation (3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            rgb = x.detach().clone().float()
            return torch.cat([self._deblur(rgb[i : i + 1]) for i in range(rgb.shape[0])]).to(x.dtype)

    def _fit(self, y, image_net, kernel_net, z_x, z_k, opt, g) -> None:
        o, k = self.options, self.options.kernel_size
        h, w = y.shape[-2:]
        m = (k - 1) // 2
        box = torch.full((1, 1, k, k), 1.0 / k**2, device=y.device)
        for _ in self._steps(o.warmup, "vdip warm-up"):
            out, kernel = image_net(z_x), kernel_net(z_k)
            target = torch.cat([y, torch.zeros_like(y)], dim=1)
            self._step(opt, F.mse_loss(out[..., m : m + h, m : m + w], target) + F.mse_loss(kernel, box))
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, o.milestones, 0.5)
        for step in self._steps(o.iterations):
            out, kernel = image_net(z_x), kernel_net(z_k)
            mean, std = out[:, :3], out[:, 3:]
            if step < o.ssim_after:
                sample = mean + std * torch.randn(mean.shape, generator=g).to(mean.device)
                weight = o.prior_weight * 0.1 ** (step // o.prior_decay_every)
                loss = -(weight * vdip_prior(mean, std, kernel, o.kernel_weight) + vdip_likelihood(sample, kernel, y))
            else:
                loss = ssim_loss(blur(mean, kernel), y)
            self._step(opt, loss)
            sched.step()


# name -> (restorer class, its options dataclass)
PER_IMAGE = {"selfdeblur": (SelfDeblur, SelfDeblurOptions), "vdip": (VDIP, VDIPOptions)}


def option_names(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(PER_IMAGE[name][1])]


@dataclass(frozen=True)
class PerImage:
    """What `--per-image NAME --per-image-set KEY=VALUE ...` asks for: stands where trained
    weights would (load_restorer builds it)."""

    name: str
    options: tuple = ()  # (key, value) pairs, values as YAML would read them
    progress: bool = False  # a bar over each image's iterations

    def build(self) -> tuple[nn.Module, dict]:
        if self.name not in PER_IMAGE:
            raise NoisedaError(f"--per-image {self.name}: unknown; choose from {', '.join(sorted(PER_IMAGE))}")
        cls, options_cls = PER_IMAGE[self.name]
        names = option_names(self.name)
        for key, _ in self.options:
            if key not in names:
                close = [n for n in names if n.startswith(key)] or difflib.get_close_matches(key, names, n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else f"; it has {', '.join(names)}"
                raise NoisedaError(f"--per-image-set {key}: {self.name} has no such option{hint}")
        try:
            options = read_dataclass(options_cls, dict(self.options), "")
        except NoisedaError as exc:  # "config kernel_size: expected int, got 'x'"
            raise NoisedaError(f"--per-image-set {str(exc).removeprefix('config ')}") from None
        spec = {"net": self.name, "kwargs": dataclasses.asdict(options), "value_range": [0.0, 1.0], "task": "deblur"}
        return cls(options, self.progress), spec

    def __str__(self) -> str:
        return f"per-image {self.name}" + "".join(f" {k}={v}" for k, v in self.options)
