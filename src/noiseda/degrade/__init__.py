"""Synthetic and simulated-real degradations.

Each takes a clean float image (CxHxW, [0, 1]) and a ``torch.Generator`` and
returns the degraded image; the same generator state gives the same result.
Register a new one with ``@DEGRADATIONS.register("name")``.
"""

import inspect

import torch

from noiseda.errors import NoisedaError
from noiseda.registry import Registry

DEGRADATIONS: Registry = Registry("degradation")

from noiseda.degrade import noise, blur, rain  # noqa: E402,F401  (register the degradations)


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
        for fn, p, kwargs in steps:
            # certain steps draw no coin: "awgn" alone is exactly the plain function
            if p >= 1.0 or torch.rand((), generator=g).item() < p:
                img = fn(img, g, **kwargs)
        return img

    return degrade

