"""Synthetic and simulated-real degradations.

Each takes a clean float image (CxHxW, [0, 1]) and a ``torch.Generator`` and
returns the degraded image; the same generator state gives the same result.
Register a new one with ``@DEGRADATIONS.register("name")``.
"""

from noiseda.registry import Registry

DEGRADATIONS: Registry = Registry("degradation")

from noiseda.degrade import noise, blur, rain  # noqa: E402,F401  (register the degradations)
