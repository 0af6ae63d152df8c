"""Restoration networks: any HxW in, same HxW out, residual (x + R(x)).

Register a new net with ``@NETS.register("name")`` on a builder returning an
``nn.Module`` whose output conv is called ``last``; importing its module here makes
it available everywhere.
"""

from noiseda.registry import Registry

NETS: Registry = Registry("restoration net")

# Published sizes, for `noiseda nets`: params, GMACs, the input side the MACs were counted at.
PUBLISHED = {
    "unet-t": (2.14e6, 3.14, 128, "the paper, A1.3"),
    "unet-s": (8.56e6, 12.48, 128, "the paper, A1.3"),
    "unet-b": (12.07e6, 17.58, 128, "the paper, A1.3"),
    "nafnet-32": (29.1e6, 16.19, 256, "Chen et al. 2022 (NAFNet-width32, SIDD)"),
    "dncnn": (0.56e6, None, None, "Zhang et al. 2017"),
    "uformer-t": (5.23e6, 12.00, 256, "Wang et al. 2022; the DA paper lists 9.50M, 15.49 G"),
    "uformer-s": (20.63e6, 43.86, 256, "Wang et al. 2022; the DA paper lists 21.38M, 34.76 G"),
    "uformer-b": (50.88e6, 89.46, 256, "Wang et al. 2022; the DA paper lists 53.58M, 86.97 G"),
}

from noiseda.nets import dncnn, nafnet, uformer, unet  # noqa: E402,F401  (register the nets)


def build_net(name: str, zero_init_last: bool = False, **kwargs):
    """A registered net; every net names its output conv ``last``, which ``zero_init_last``
    zeroes so that the net starts as the identity (x + 0)."""
    from torch import nn

    from noiseda.errors import NoisedaError

    try:
        net = NETS.build(name, **kwargs)
    except TypeError as exc:
        raise NoisedaError(f"net {name!r}: {exc}") from None
    if zero_init_last:
        nn.init.zeros_(net.last.weight)
        if net.last.bias is not None:
            nn.init.zeros_(net.last.bias)
    return net
