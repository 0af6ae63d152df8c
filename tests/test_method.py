import math

import pytest
import torch

from noiseda.methods import Batch, build_method, lambda_at
from noiseda.methods.noise_da.method import swap_slots
from noiseda.nets import build_net

from conftest import tiny_config


def _batch(n=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(**{k: torch.rand(n, 3, size, size, generator=g) for k in ("synthetic", "clean", "real", "reference")})


def _method(ds, *extra):
    cfg = tiny_config(ds, *extra)
    torch.manual_seed(0)
    return build_method(cfg, build_net("unet", width=4))


class Recorder(torch.nn.Module):
    """Stands in for the diffusion net and records what it is given."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, y_t, c1, c2, gamma):
        self.calls.append((y_t, c1, c2, gamma))
        return self.w * (c1 + c2).mean(1, keepdim=True).expand_as(y_t)


def test_swap_slots_swaps_exactly_the_drawn_samples():
    a, b = torch.zeros(5, 3, 2, 2), torch.ones(5, 3, 2, 2)
    coins = torch.tensor([True, False, False, True, True])
    s1, s2 = swap_slots(a, b, coins)
    for i, c in enumerate(coins):
        assert torch.equal(s1[i], b[i] if c else a[i])
        assert torch.equal(s2[i], a[i] if c else b[i])


def test_channel_shuffle_and_residual_swap_negatives(dataset):
    m = _method(dataset)
    m.diffusion = Recorder()
    coins = [torch.tensor([True, False, True, False]), torch.tensor([False, False, True, True])]
    m.draw_coins = lambda n, device: coins.pop(0)
    b = _batch()
    m(b, 0.1)
    ((y_t, c1, c2, gamma),) = m.diffusion.calls
    with torch.no_grad():
        y_s, y_r = m.restorer(b.synthetic), m.restorer(b.real)
    r_s, r_r = y_s - b.synthetic, y_r - b.real
    n_s, n_r = b.synthetic + r_r, b.real + r_s  # the residual-swapped negatives
    pos_coins, neg_coins = [True, False, True, False], [False, False, True, True]
    for i in range(4):
        exp1, exp2 = (y_r[i], y_s[i]) if pos_coins[i] else (y_s[i], y_r[i])
        torch.testing.assert_close(c1[i], exp1)
        torch.testing.assert_close(c2[i], exp2)
        exp1, exp2 = (n_r[i], n_s[i]) if neg_coins[i] else (n_s[i], n_r[i])
        torch.testing.assert_close(c1[4 + i], exp1)
        torch.testing.assert_close(c2[4 + i], exp2)
    assert torch.equal(y_t[:4], y_t[4:]) and torch.equal(gamma[:4], gamma[4:])


def test_hinge_is_one_hinge_on_batch_means(dataset):
    m = _method(dataset, "method.options.noise-da.margin=0.1")
    out = m(_batch(), 0.5)
    assert out["hinge"].item() == pytest.approx(max(0.0, out["mse_pos"].item() - out["mse_neg"].item() + 0.1), abs=1e-6)
    assert out["noise"].item() == pytest.approx((out["mse_pos"].item() + out["hinge"].item()) / 2, rel=1e-6)
    assert out["total"].item() == pytest.approx(out["sup"].item() + 0.5 * out["noise"].item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["synthetic", "real"])
def test_single_domain_conditions(dataset, mode):
    m = _method(dataset, f"method.options.noise-da.condition={mode}", "method.options.noise-da.channel_shuffle=false", "method.options.noise-da.residual_swap=false")
    m.diffusion = Recorder()
    b = _batch()
    out = m(b, 0.1)
    (_, c1, c2, _), = m.diffusion.calls
    with torch.no_grad():
        expected = m.restorer(b.synthetic if mode == "synthetic" else b.real)
    torch.testing.assert_close(c1, expected)
    torch.testing.assert_close(c2, expected)
    assert "hinge" not in out and out["noise"].item() == pytest.approx(out["mse_pos"].item())


def test_ex_targets_the_unpaired_reference(dataset):
    m = _method(dataset, "method.name=noise-da-ex")
    assert "reference" in m.streams and not m.residual_swap
    m.diffusion = Recorder()
    b = _batch()
    torch.manual_seed(3)
    m(b, 0.1)
    (y_t, _, _, gamma), = m.diffusion.calls
    torch.manual_seed(3)
    g = m.schedule.sample(4, (1, 999), "cpu").view(-1, 1, 1, 1)
    eps = torch.randn_like(b.reference)
    torch.testing.assert_close(y_t, g.sqrt() * b.reference + (1 - g).sqrt() * eps)


def test_lambda_ramp_values():
    top = 0.2 * (2 / (1 + math.exp(-5)) - 1)
    assert lambda_at(0, 0.2, 5.0, 100) == 0.0
    assert lambda_at(100, 0.2, 5.0, 100) == pytest.approx(top) and top == pytest.approx(0.19732, abs=1e-5)
    assert lambda_at(10_000, 0.2, 5.0, 100) == pytest.approx(top)
    assert lambda_at(50, 0.2, 5.0, 100) == pytest.approx(0.2 * (2 / (1 + math.exp(-2.5)) - 1))
    values = [lambda_at(s, 0.2, 5.0, 100) for s in range(0, 120, 7)]
    assert values == sorted(values)


@pytest.mark.parametrize("t_range", [(1, 100), (900, 999), (1, 999), (500, 500)])
def test_noise_levels_stay_in_the_t_range(dataset, t_range):
    m = _method(dataset)
    gammas = m.schedule.gammas
    g = m.schedule.sample(20000, t_range, "cpu")
    lo, hi = float(gammas[t_range[1]]), float(gammas[t_range[0] - 1])
    assert g.min().item() >= lo - 1e-7 and g.max().item() <= hi + 1e-7
    assert (g.max() - g.min()).item() > 0.5 * (hi - lo)  # covers the range, not one point


def test_schedule_matches_the_reference():
    from noiseda.config import DiffusionConfig
    from noiseda.methods.noise_da.diffusion import GammaSchedule

    gammas = GammaSchedule(DiffusionConfig()).gammas
    assert gammas[0].item() == pytest.approx(1 - 1e-6)
    assert GammaSchedule(DiffusionConfig()).gamma_bounds((1, 999))[0] == pytest.approx(0.0066, abs=2e-4)
    assert GammaSchedule(DiffusionConfig()).gamma_bounds((1, 100))[0] == pytest.approx(0.95, abs=5e-3)


def test_noise_loss_gradient_reaches_the_restorer(dataset):
    m = _method(dataset)
    m.supervised = lambda restored, target: torch.zeros(())  # leave lambda * L_noise alone
    m(_batch(), 1.0)["total"].backward()
    grads = [p.grad for p in m.restorer.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    assert all(p.grad is not None for p in m.diffusion.parameters() if p.requires_grad)


def test_vanilla_has_no_diffusion_net(dataset):
    m = _method(dataset, "method.name=vanilla")
    assert not hasattr(m, "diffusion")
    assert set(m(_batch(), 0.0)) == {"total", "sup"}


def test_paper_size_diffusion_net():
    from noiseda.config import DiffusionConfig
    from noiseda.methods.noise_da.diffusion import NoisePredictor

    net = NoisePredictor(DiffusionConfig())
    n = sum(p.numel() for p in net.parameters())
    assert n == 62_643_075  # the reference's count, exactly
    assert net.unet.conv_in.in_channels == 9 and net.unet.conv_out.out_channels == 3


def test_bottleneck_attention_normalises_its_input(dataset):
    """The reference runs GroupNorm before qkv; without it the attention saturates at init."""
    m = _method(dataset)
    attention = m.diffusion.unet.mid_block.attentions[0]
    seen = {}

    def record_norm(module, args, out):
        seen["norm_out"] = out.detach()

    def record_q(module, args):
        seen["q_in"] = args[0].detach()

    attention.group_norm.register_forward_hook(record_norm)
    attention.to_q.register_forward_pre_hook(record_q)
    m(_batch(), 0.1)
    q_in = seen["q_in"]
    norm_out = seen["norm_out"]  # (n, c, h, w); to_q sees it as (n, h*w, c)
    assert torch.equal(q_in, norm_out.flatten(2).transpose(1, 2))
    # Normalised per group: mean ~0, std ~1 over each sample's channels and pixels (affine is identity at init).
    assert norm_out.mean().abs() < 1e-3 and abs(norm_out.std().item() - 1) < 0.05


def _grads(m, batch, lam, seed=0):
    m.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # same gamma, noise and coins for every call
    m(batch, lam)["total"].backward()
    return ([p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in m.restorer.parameters()],
            [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in m.diffusion.parameters()])


def test_diffusion_warmup_keeps_the_restorers_gradient_and_trains_the_diffusion_net_at_full_weight(dataset):
    batch = _batch()
    ref = _method(dataset, "diffusion.dropout=0")
    warm = _method(dataset, "diffusion.dropout=0", "method.options.noise-da.diffusion_warmup_steps=5", "method.lambda_weight=0.2")
    warm.load_state_dict(ref.state_dict())
    r_ref, d_ref = _grads(ref, batch, 0.05)
    r_warm, d_warm = _grads(warm, batch, 0.05)
    # The restorer gets lam * dL_noise either way; the diffusion net gets 0.2 * dL_noise, not lam * dL_noise.
    for a, b in zip(r_ref, r_warm):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    for a, b in zip(d_ref, d_warm):
        torch.testing.assert_close(b, a * (0.2 / 0.05), rtol=1e-4, atol=1e-7)
    # While warming up (lam = 0) the restorer learns from L_sup alone; the diffusion net still learns.
    r0, d0 = _grads(warm, batch, 0.0)
    sup_only = _method(dataset, "method.name=vanilla")
    sup_only.restorer.load_state_dict(warm.restorer.state_dict())
    sup_only.zero_grad()
    sup_only(batch, 0.0)["total"].backward()
    for a, p in zip(r0, sup_only.restorer.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-8)
    assert sum(g.abs().sum().item() for g in d0) > 0


def test_lambda_ramp_starts_after_the_warmup(dataset):
    m = _method(dataset, "method.options.noise-da.diffusion_warmup_steps=10")
    cfg = m.cfg
    assert [m.lambda_at_step(s, 4) for s in (1, 10)] == [0.0, 0.0]
    assert m.lambda_at_step(12, 4) == lambda_at(2, cfg.method.lambda_weight, cfg.method.lambda_slope, 4)
    plain = _method(dataset)
    assert plain.lambda_at_step(2, 4) == lambda_at(2, cfg.method.lambda_weight, cfg.method.lambda_slope, 4)
    assert _method(dataset, "method.name=vanilla").lambda_at_step(2, 4) == 0.0  # it has no lambda
