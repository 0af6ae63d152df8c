import pytest
import torch

from noiseda.nets import NETS, build_net
from noiseda.nets.count import count_macs, count_params

PAPER = {"unet-t": (2.14e6, 3.14e9), "unet-s": (8.56e6, 12.48e9), "unet-b": (12.07e6, 17.58e9)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_unet_sizes_match_the_paper(name):
    params, macs = PAPER[name]
    net = build_net(name)
    assert abs(count_params(net) - params) / params < 0.01
    assert abs(count_macs(net, 128) - macs) / macs < 0.03


def test_unet_parameter_formula():
    for c in (4, 16, 32):
        assert count_params(build_net("unet", width=c)) == 2088 * c * c + 105 * c + 3


@pytest.mark.parametrize("name", NETS.names())
@pytest.mark.parametrize("hw", [(1, 1), (7, 13), (37, 53)])
def test_any_size_keeps_shape(name, hw):
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        assert build_net(name)(x).shape == x.shape


def test_zero_init_last_starts_as_identity():
    net = build_net("unet", width=4, zero_init_last=True)
    x = torch.rand(1, 3, 19, 21)
    assert torch.equal(net(x), x)
    # The reference init does not: its residual starts far from zero.
    assert not torch.allclose(build_net("unet", width=4)(x), x)
