"""The fast path's parts: low-precision GroupNorm, memory layouts, device-side EMA skip, precision."""

import copy

import pytest

import torch
import torch.nn.functional as F
from torch import nn

from noiseda.methods.noise_da.diffusion import LowPrecisionGroupNorm
from noiseda.training.ema import EMA
from noiseda.inference.tiling import for_inference
from noiseda.nets import build_net
from noiseda.device import resolve_channels_last, resolve_precision, speed_up

from test_method import _batch, _method


def test_low_precision_group_norm_is_plain_outside_autocast_and_close_inside():
    torch.manual_seed(0)
    ref = nn.GroupNorm(4, 16)
    nn.init.uniform_(ref.weight)
    nn.init.uniform_(ref.bias)
    low = LowPrecisionGroupNorm(4, 16)
    low.load_state_dict(ref.state_dict())
    x = torch.randn(2, 16, 8, 8) * 3 + 1
    assert torch.equal(low(x), ref(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = low(x.bfloat16())
    assert y.dtype == torch.bfloat16  # (CUDA autocast alone would compute and return fp32)
    assert (y.float() - ref(x)).abs().max() < 0.05  # bf16 rounding of the output only


def test_diffusion_net_uses_low_precision_group_norm_and_our_upsampler_everywhere(dataset):
    m = _method(dataset)
    norms = [mod for mod in m.diffusion.modules() if isinstance(mod, nn.GroupNorm)]
    assert norms and all(type(mod) is LowPrecisionGroupNorm for mod in norms)
    ups = [type(mod).__name__ for mod in m.diffusion.modules() if type(mod).__name__.endswith("Upsample2D")
           or type(mod).__name__ == "NearestUpsample2x"]
    assert ups and set(ups) == {"NearestUpsample2x"}  # none of diffusers' Upsample2D left


def test_channels_last_applies_to_the_restorer_only_and_changes_no_result(dataset):
    plain = _method(dataset, "method.options.noise-da.residual_swap=false", "method.options.noise-da.channel_shuffle=false")
    fast = speed_up(copy.deepcopy(plain), channels_last=True, compile=False)
    convs = lambda net: [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]  # noqa: E731
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs(fast.restorer))
    assert all(w.is_contiguous() for w in convs(fast.diffusion))
    batch = _batch()
    cl_batch = batch.map(lambda v: v.contiguous(memory_format=torch.channels_last))
    plain.eval(), fast.eval()
    torch.manual_seed(1)
    a = plain(batch, 0.5)["total"]
    torch.manual_seed(1)
    b = fast(cl_batch, 0.5)["total"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ema_skips_a_step_marked_not_ok_without_reading_it_on_the_host():
    net = build_net("unet", width=4)
    ema = EMA(net, decay=0.5, warmup=False)
    before = [p.clone() for p in ema.net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net, torch.tensor(False))
    assert ema.updates == 0 and all(torch.equal(a, b) for a, b in zip(before, ema.net.parameters()))
    ema.update(net, torch.tensor(True))
    assert ema.updates == 1
    for b, e, p in zip(before, ema.net.parameters(), net.parameters()):
        torch.testing.assert_close(e, 0.5 * b + 0.5 * p)


def test_auto_precision_and_layout_on_cpu(monkeypatch):
    """Training on a CPU: fp32, restorer channels-last. Inference: channels-last, and bf16 only
    where the CPU computes bf16 natively (elsewhere it is emulated, slower than fp32)."""
    from noiseda import device as step

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(step, "cpu_computes_bf16", lambda native=native: native)
        assert resolve_precision("auto", cpu) == "no" and resolve_precision("bf16", cpu) == "bf16"
        assert resolve_precision("auto", cpu, inference=True) == ("bf16" if native else "no")
        assert resolve_precision("no", cpu, inference=True) == "no"
    assert resolve_channels_last(None, cpu) is True and resolve_channels_last(False, cpu) is False


def test_inference_on_cpu_is_channels_last_and_fp32_unless_asked():
    net = build_net("unet", width=4)
    x = torch.rand(1, 3, 16, 16)
    ref = net(x)
    fp32 = for_inference(copy.deepcopy(net), "cpu", "no")
    assert fp32.channels_last and fp32.precision == "no"
    weights = [m.weight for m in fp32.modules() if isinstance(m, nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    torch.testing.assert_close(fp32(x), ref, atol=1e-5, rtol=1e-5)
    bf16 = for_inference(copy.deepcopy(net), "cpu", "bf16")
    out = bf16(x)
    assert out.dtype == torch.float32 and 0 < (out - ref).abs().max() < 0.05


def test_nearest_upsampling_under_compile_equals_interpolate_and_needs_no_scatter():
    """The diffusion net's x2 upsamplers: under torch.compile a broadcast, whose backward (with
    the compiler's decompositions) is a sum instead of F.interpolate's atomic index_put."""
    from functorch.compile import make_boxed_func
    from torch._functorch.aot_autograd import aot_function
    from torch._inductor.decomposition import select_decomp_table

    from noiseda.methods.noise_da.diffusion import NearestUpsample2x

    backward_graphs = []

    def backend(gm, example_inputs):
        def keep_backward(g, _):
            backward_graphs.append(str(g.graph))
            return make_boxed_func(g)
        return aot_function(gm, fw_compiler=lambda g, _: make_boxed_func(g), bw_compiler=keep_backward,
                            decompositions=select_decomp_table())

    up = NearestUpsample2x()
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    weights = torch.randn(2, 3, 8, 10)
    y = torch.compile(lambda t: up(t) * weights, backend=backend)(x)
    y.sum().backward()
    grad, x.grad = x.grad, None
    ref = F.interpolate(x, scale_factor=2.0, mode="nearest") * weights
    ref.sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(grad, x.grad)
    assert backward_graphs and "index_put" not in backward_graphs[0]
    assert torch.equal(up(x), F.interpolate(x, scale_factor=2.0, mode="nearest"))  # eager: the builtin


def test_a_methods_gradient_clip_bounds_the_step_and_logs_the_norm_before_clipping():
    from noiseda.training.step import StepRunner, make_accelerator, make_optimizer

    class Steep(nn.Module):  # loss 50 * sum(w): every gradient entry 50, norm 50 * sqrt(4) = 100
        def __init__(self):
            super().__init__()
            self.restorer = nn.Linear(2, 1, bias=False)
            self.other = nn.Parameter(torch.zeros(2))

        def forward(self, batch, lam):
            total = 50 * (self.restorer.weight.sum() + self.other.sum())
            return {"total": total}

    for clip, expected in ((None, 100.0), (5.0, 5.0)):
        method = Steep()
        opt = make_optimizer(method.parameters(), 1e-3, (0.9, 0.999), 1e-8)
        runner = StepRunner(make_accelerator("no", cpu=True), method, opt, EMA(method.restorer, 0.5, warmup=False),
                            method.restorer, max_grad_norm=clip)
        runner({}, 0.0)
        # Adam's first moment after one step is (1 - beta1) * the gradient it was given
        first = torch.cat([opt.state[p]["exp_avg"].flatten() for p in method.parameters()]) / 0.1
        assert first.norm().item() == pytest.approx(expected, rel=1e-4)
        assert runner.flush()["train/grad_norm"] == pytest.approx(100.0, rel=1e-4)  # logged before clipping
