"""Restoration networks: any HxW in, same HxW out, residual (x + R(x)).

Register a new net with ``@NETS.register("name")`` (noiseda.nets.registry) on a builder
returning an ``nn.Module`` whose output conv is called ``last``; a module in this package is
imported, and its nets registered, with the package.
"""

import importlib
import pkgutil

from noiseda.nets.registry import NETS  # noqa: F401  (the package's interface)

# Published sizes, for `noiseda nets`: params, GMACs, the input side the MACs were counted at.
PUBLISHED = {
    "unet-t": (2.14e6, 3.14, 128, "the paper, A1.3"),
    "unet-s": (8.56e6, 12.48, 128, "the paper, A1.3"),
    "unet-b": (12.07e6, 17.58, 128, "the paper, A1.3"),
    "nafnet-32": (29.1e6, 16.19, 256, "Chen et al. 2022 (NAFNet-width32, SIDD)"),
    "dncnn": (0.56e6, None, None, "Zhang et al. 2017"),
    # The DA paper's Uformer-T/S/B rows (9.50M / 21.38M / 53.58M, 15.49 / 34.76 / 86.97 G at 256)
    # are the sizes of the Uformer repo's convolutional UNet baseline at widths 32 / 48 / 76.
    "uformer-t": (5.23e6, 12.00, 256, "Wang et al. 2022"),
    "uformer-s": (20.63e6, 43.86, 256, "Wang et al. 2022"),
    "uformer-b": (50.88e6, 89.46, 256, "Wang et al. 2022"),
    "restormer-48": (26.13e6, 140.99, 256, "Zamir et al. 2022; convs only, without the attention matmuls"),
    # SwinIR's authors count the conv after the RSTBs as 3*C*C a pixel (9*C*C in ours); their
    # lightweight 0.878M is for x2 SR with its upsampler and without the position-bias tables.
    "swinir-denoise": (None, 787.99, 256, "Liang et al. 2021, the authors' count for colour denoising"),
    "swinir-light": (0.878e6, None, None, "Liang et al. 2021, lightweight x2 SR"),
}

# Members are found, not listed: every module here registers its nets when imported.
for _member in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_member.name}")


def build_net(name: str, zero_init_last: bool = False, **kwargs):
    """A registered net; every net names its output conv ``last``, which ``zero_init_last``
    zeroes so that the net starts as the identity (x + 0)."""
    from torch import nn

    from noiseda.errors import NoisedaError

    try:
        net = NETS.build(name, **kwargs)
    except (TypeError, ValueError) as exc:  # unknown or ill-fitting options (net.options in configs)
        raise NoisedaError(f"net {name!r}: {exc}") from None
    if zero_init_last and not getattr(net, "identity_at_zero_last", True):
        raise NoisedaError(f"net {name!r} cannot start as the identity (it never sees the pixel it restores): "
                           "leave net.zero_init_last false")
    if zero_init_last:
        nn.init.zeros_(net.last.weight)
        if net.last.bias is not None:
            nn.init.zeros_(net.last.bias)
    return net
