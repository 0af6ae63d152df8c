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


@pytest.mark.parametrize("name", NETS.names())
def test_every_net_trains_exports_and_reloads(name, tmp_path):
    """Registry-driven: gradients reach every parameter, zero_init_last starts at the identity,
    export/load gives identical outputs (small instances where the net takes a width)."""
    from noiseda.checkpoint import export_restorer, load_restorer

    kwargs = {"width": 8} if name in ("unet", "nafnet", "dncnn", "uformer") else {}
    torch.manual_seed(0)
    net = build_net(name, **kwargs)
    x = torch.rand(2, 3, 20, 28)
    net(x).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # NAFNet's zero-initialised branch scales block the gradient of their branch at step 0 only
    assert all(".beta" in n or ".gamma" in n or "conv" in n or "norm" in n or "sca" in n for n in missing), missing
    assert not any(n.startswith("last") for n in missing)
    ident = build_net(name, zero_init_last=True, **kwargs).eval()
    with torch.no_grad():
        torch.testing.assert_close(ident(x), x)
    export_restorer(tmp_path / "w", net.state_dict(), {"net": name, "kwargs": kwargs, "value_range": [0.0, 1.0]})
    loaded, _ = load_restorer(tmp_path / "w")
    net.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_fixed_size_nets_refuse_a_width():
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match="nafnet-32"):
        build_net("nafnet-32", width=8)


@pytest.mark.parametrize("name, params, macs256", [("nafnet-32", 29.1e6, 16.19e9), ("dncnn", 0.56e6, None)])
def test_published_sizes(name, params, macs256):
    net = build_net(name)
    assert abs(count_params(net) - params) / params < 0.01
    if macs256:  # the counter skips elementwise ops (norms, gates), which the paper's count includes
        assert abs(count_macs(net, 256) - macs256) / macs256 < 0.03


@pytest.mark.parametrize("name", ["unet", "nafnet", "dncnn", "uformer"])
def test_small_instances_train_a_noise_da_step(name, dataset, tmp_path):
    from noiseda.train import train

    from conftest import tiny_config

    summary = train(tiny_config(dataset, f"net.name={name}", "net.width=8", "train.steps=1", "method.name=noise-da"),
                    tmp_path / name, progress=False)
    assert summary["steps"] == 1 and summary["nonfinite_skipped"] == 0
