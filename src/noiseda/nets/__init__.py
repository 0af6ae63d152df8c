"""Restoration networks: any HxW in, same HxW out, residual (x + R(x)).

Register a new net with ``@NETS.register("name")`` on a builder returning an
``nn.Module``; importing its module here makes it available everywhere.
"""

from noiseda.registry import Registry

NETS: Registry = Registry("restoration net")

from noiseda.nets import unet  # noqa: E402,F401  (registers unet-t/s/b)


def build_net(name: str, **kwargs):
    return NETS.build(name, **kwargs)
