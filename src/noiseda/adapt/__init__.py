"""Adaptation methods: each turns a training batch into a dict of losses with "total".

A method is an ``nn.Module`` that owns the restorer (always ``.restorer``) and
whatever training-only nets it needs; only ``.restorer`` is ever exported.
Register a new one with ``@METHODS.register("name")`` on a builder
``(cfg, restorer) -> Method``.
"""

from noiseda.registry import Registry

METHODS: Registry = Registry("method")

from noiseda.adapt import c2n, cycada, dann, dsn, masked, ne2ne, noise_da, oracle, pixelda, tv_prior, vanilla  # noqa: E402,F401  (register the methods)
from noiseda.adapt.base import Method, lambda_at  # noqa: E402,F401


def build_method(cfg, restorer):
    return METHODS.build(cfg.method.name, cfg=cfg, restorer=restorer)
