import pytest
import torch

from noiseda.errors import NoisedaError
from noiseda.nets import NETS, build_net
from noiseda.nets.count import count_macs, count_params

# Nets named without a size suffix ("unet", "nafnet", ...) take any width; the others are fixed published settings.
SIZABLE = [n for n in NETS.names() if "-" not in n]

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
    from noiseda.inference.export import export_restorer, load_restorer

    kwargs = {"width": 8} if name in SIZABLE else {}
    torch.manual_seed(0)
    net = build_net(name, **kwargs)
    x = torch.rand(1, 3, 20, 28)
    net(x).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    if name.startswith("nafnet"):  # zero-initialised branch scales block their branch's gradient at step 0 only
        block_inner = ("norm1", "norm2", "conv1", "conv2", "conv3", "conv4", "conv5", "sca")
        missing = [n for n in missing if not any(f".{part}." in n for part in block_inner)]
    assert not missing, missing
    if getattr(net, "identity_at_zero_last", True):
        ident = build_net(name, zero_init_last=True, **kwargs).eval()
        with torch.no_grad():
            torch.testing.assert_close(ident(x), x)
    else:  # a blind-spot net never sees the pixel it restores: refused, not silently non-identity
        with pytest.raises(NoisedaError, match="cannot start as the identity"):
            build_net(name, zero_init_last=True, **kwargs)
    export_restorer(tmp_path / "w", net.state_dict(), {"net": name, "kwargs": kwargs, "value_range": [0.0, 1.0]})
    loaded, _ = load_restorer(tmp_path / "w")
    net.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


@pytest.mark.parametrize("name", [n for n in NETS.names() if n not in SIZABLE])
def test_fixed_size_nets_refuse_a_width(name):
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match=name):
        build_net(name, width=8)


@pytest.mark.parametrize("name, options, message", [
    ("restormer", {"width": 7}, "width must be even"),
    ("restormer", {"heads": (0, 1, 1, 1)}, "heads >= 1"),
    ("swinir", {"win": 0}, "window 0 must be >= 2"),
    ("swinir", {"heads": 3}, "must split into heads 3"),
    ("uformer", {"win": 0}, "window >= 2"),
])
def test_ill_fitting_sizes_are_refused_at_build_time(name, options, message):
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match=message):
        build_net(name, **options)


def test_shifted_window_masks_are_shared_and_bounded():
    from noiseda.nets import uformer

    net = build_net("swinir", width=8, depths=(2, 2), heads=2)
    uformer._MASKS.clear()
    with torch.no_grad():
        for size in (16, 24, 32, 40, 48, 56):
            net(torch.rand(1, 3, size, size))
    # two shifted layers over six sizes: one mask per size (not per layer), the oldest dropped after four
    assert len(uformer._MASKS) == 4
    assert sorted(k[0] for k in uformer._MASKS) == [32, 40, 48, 56]


@pytest.mark.parametrize("name, params, macs256", [("nafnet-32", 29.1e6, 16.19e9), ("dncnn", 0.56e6, None),
                                                   ("restormer-48", 26.13e6, None), ("uformer-t", 5.23e6, None),
                                                   ("uformer-s", 20.63e6, None), ("uformer-b", 50.88e6, None)])
def test_published_sizes(name, params, macs256):
    with torch.device("meta"):
        net = build_net(name)
    assert abs(count_params(net) - params) / params < 0.01
    if macs256:  # the counter skips elementwise ops (norms, gates), which the paper's count includes
        assert abs(count_macs(net, 256) - macs256) / macs256 < 0.03


def test_restormer_conv_macs_equal_the_published_count():
    """Restormer's 140.99 G at 256x256 counts its convolutions only (not the attention matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = build_net("restormer-48")
        with FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, 3, 256, 256))
    conv_macs = counter.get_flop_counts()["Global"][torch.ops.aten.convolution] / 2
    assert abs(conv_macs - 140.99e9) < 0.01e9


def test_mac_count_leaves_the_net_alone_and_sees_attention():
    net = build_net("uformer", width=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    macs = count_macs(net, 64)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert next(net.parameters()).device.type == "cpu"
    # window attention (q @ k and attn @ v) must be counted: more than the linear/conv layers alone
    with torch.device("meta"):
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            build_net("uformer", width=8)(torch.zeros(1, 3, 64, 64))
    assert macs == counter.get_total_flops() // 2
    ops = counter.get_flop_counts()["Global"]
    assert torch.ops.aten.bmm in ops or torch.ops.aten.matmul in ops


def test_nets_command_prints_every_net(capsys):
    from noiseda.cli import main

    assert main(["nets", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert all(f"| {name} |" in out for name in NETS.names())
    assert "| unet-t | 2,141,475 |" in out


@pytest.mark.parametrize("name", SIZABLE)
def test_small_instances_train_a_noise_da_step(name, dataset, tmp_path):
    from noiseda.training.loop import train

    from conftest import tiny_config

    summary = train(tiny_config(dataset, f"net.name={name}", "net.width=8", "train.steps=1", "method.name=noise-da"),
                    tmp_path / name, progress=False)
    assert summary["steps"] == 1 and summary["nonfinite_skipped"] == 0


def test_net_options_set_block_counts_and_travel_with_the_weights(dataset, tmp_path):
    """net.options passes the builder's keyword arguments (here NAFNet's block counts) and the
    exported model rebuilds the same architecture."""
    from noiseda.inference.export import load_restorer
    from noiseda.training.loop import train

    from conftest import tiny_config

    cfg = tiny_config(dataset, "net.name=nafnet", "net.width=8", "net.options.enc_blocks=[1,2,1,1]",
                      "net.options.middle_blocks=2", "train.steps=1")
    train(cfg, tmp_path / "run", progress=False)
    net, spec = load_restorer(tmp_path / "run" / "final")
    assert spec["kwargs"] == {"width": 8, "enc_blocks": [1, 2, 1, 1], "middle_blocks": 2}
    assert len(net.encoders[1]) == 2 and len(net.middle) == 2
