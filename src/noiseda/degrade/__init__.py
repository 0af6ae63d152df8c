"""Synthetic and simulated-real degradations.

Each takes clean float images in [0, 1], one (CxHxW) or a batch (BxCxHxW, each
sample with its own random parameters) on any device, and a ``torch.Generator``
(on the CPU or on the images' device), and returns the degraded images; the
same generator state gives the same result. Register a new one with
``@DEGRADATIONS.register("name")`` (noiseda.degrade.registry; ``noiseda.degrade.ops.batched`` lets a
batched function take single images too).
"""

import inspect

import torch

import importlib
import pkgutil

from noiseda.degrade.registry import DEGRADATIONS
from noiseda.errors import NoisedaError

# Members are found, not listed: every module here registers its degradations when imported.
for _member in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_member.name}")


def compose(spec: str, **options):
    """A degradation from a spec: one name, or several applied in order, each with an optional
    probability, e.g. ``"shake-blur+awgn@0.5"``. ``options`` (such as ``sigma_range``) go to
    the degradations whose signature takes them."""
    steps = []
    for part in spec.split("+"):
        name, _, prob = part.strip().partition("@")
        try:
            p = float(prob) if prob else 1.0
        except ValueError:
            raise NoisedaError(f"degradation {spec!r}: bad probability {prob!r}") from None
        if not 0.0 <= p <= 1.0:
            raise NoisedaError(f"degradation {spec!r}: probability {p} not in [0, 1]")
        fn = DEGRADATIONS.get(name)
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in options.items() if k in params}
        steps.append((fn, p, kwargs))

    def degrade(img, g):
        single = img.dim() == 3
        x = img[None] if single else img
        for fn, p, kwargs in steps:
            if p >= 1.0:  # certain steps draw no coin: "awgn" alone is exactly the plain function
                x = fn(x, g, **kwargs)
                continue
            coins = torch.rand(x.shape[0], generator=g, device=g.device) < p
            if g.device.type == "cpu" and not coins.any():  # (checked on the CPU only: no device sync)
                continue
            x = torch.where(coins.to(x.device).view(-1, 1, 1, 1), fn(x, g, **kwargs), x)  # per sample
        return x[0] if single else x

    return degrade

