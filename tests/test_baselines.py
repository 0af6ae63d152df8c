"""The comparison methods (DANN, DSN, PixelDA, CyCADA, Neighbor2Neighbor, masked training, C2N, the oracle): each trains on
tiny data with finite losses, resumes exactly, and exports nothing but the restorer."""

import dataclasses
import json
import math
import signal

import pytest
import torch
from safetensors.torch import load_file

from noiseda.methods.base import Batch, scale_grad
from noiseda.methods.parts.features import bottleneck_name
from noiseda.methods.masked import mask_pixels
from noiseda.methods.ne2ne import neighbour_subsample
from noiseda.cli import main
from noiseda.errors import NoisedaError
from noiseda.nets import build_net
from noiseda.evaluation.report import read_metrics

from conftest import TINY, data_overrides, tiny_config
from test_interrupt import _signal_at

METHODS = {
    "dann": [],
    "dsn": [],
    "ne2ne": [],
    "masked": ["net.name=swinir", "net.width=8", "net.options={depths: [1], heads: 2, win: 4}"],  # attention to mask
    "pixelda": [],
    "cycada": ["data.patch_size=32"],  # its PatchGAN's 3 strided layers need more than 16 px
    "c2n": [],
    "tv-prior": [],
    "oracle": ["data.clean=[]"],  # real pairs instead (added below)
}


def _argv(dataset, out, method, *extra):
    sets = TINY + data_overrides(dataset) + [f"method.name={method}", *METHODS[method], *extra]
    if method == "oracle":
        sets.append(f"data.pairs={dataset['val']}")
    argv = ["train", "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    return argv


@pytest.mark.parametrize("method", list(METHODS))
def test_trains_resumes_exactly_and_exports_only_the_restorer(method, dataset, tmp_path, monkeypatch):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(_argv(dataset, straight, method)) == 0
    with monkeypatch.context() as m:
        _signal_at(m, 2, signal.SIGINT)
        assert main(_argv(dataset, stopped, method)) == 130
    assert main(["train", "--out", str(stopped), "--resume", "--no-progress"]) == 0
    for part in ("final/restorer.safetensors", "checkpoints/step-00000006/model.safetensors"):
        a, b = load_file(straight / part), load_file(stopped / part)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    losses = [r["loss/total"] for r in read_metrics(straight) if "loss/total" in r]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    exported = load_file(straight / "final" / "restorer.safetensors")
    spec = json.loads((straight / "final" / "net.json").read_text())
    assert exported.keys() == build_net(spec["net"], **spec["kwargs"]).state_dict().keys()  # the restorer alone
    assert main(["restore", "--weights", str(straight), "--input", str(dataset["val"] / "noisy"), "--output",
                 str(tmp_path / "restored"), "--device", "cpu", "--no-progress"]) == 0


def test_gradient_reversal_flips_the_sign():
    x = torch.randn(5, requires_grad=True)
    (scale_grad(x, -1.0) * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, -torch.arange(5.0))


def test_dann_reads_the_bottleneck_of_every_net():
    names = {n: bottleneck_name(build_net(n, **({"width": 4} if n == "unet" else {})))
             for n in ("unet", "dncnn", "nafnet", "restormer")}
    assert names == {"unet": "down_path.3", "dncnn": "body", "nafnet": "middle", "restormer": "latent"}


def test_unknown_dann_features_are_refused(dataset, tmp_path, capsys):
    assert main(_argv(dataset, tmp_path / "run", "dann", "method.options.dann.features=[down_path.9]")) == 2
    assert "has no module 'down_path.9'" in capsys.readouterr().err


def test_neighbour_subsampler_picks_two_edge_neighbours_of_one_cell():
    h = w = 8
    index = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w).repeat(2, 3, 1, 1)
    g1, g2 = neighbour_subsample(index, torch.Generator().manual_seed(0))
    assert g1.shape == g2.shape == (2, 3, 4, 4)
    assert torch.equal(g1[:, 0], g1[:, 2]) and torch.equal(g2[:, 0], g2[:, 1])  # same pixel in every channel
    r1, c1 = g1 // w, g1 % w
    r2, c2 = g2 // w, g2 % w
    cell_r, cell_c = torch.arange(4).view(4, 1) * 2, torch.arange(4).view(1, 4) * 2
    for r, c in ((r1, c1), (r2, c2)):  # inside its own 2x2 cell
        assert ((r - cell_r) >= 0).all() and ((r - cell_r) <= 1).all()
        assert ((c - cell_c) >= 0).all() and ((c - cell_c) <= 1).all()
    assert torch.equal((r1 - r2).abs() + (c1 - c2).abs(), torch.ones_like(r1))  # edge neighbours, never diagonal


def test_masking_hides_the_drawn_share_of_pixels_in_all_channels():
    x = torch.ones(4, 3, 64, 64)
    masked = mask_pixels(x, 0.8, 0.9, value=-0.1)
    hidden = (masked == -0.1).float().mean(dim=(1, 2, 3))
    assert ((hidden > 0.77) & (hidden < 0.93)).all()
    assert torch.equal(masked[:, 0], masked[:, 1]) and masked.unique().tolist() == pytest.approx([-0.1, 1.0])


def test_masked_training_masks_attention_tokens_in_training_only(dataset):
    from noiseda.methods import build_method
    from noiseda.nets.blocks import Attention

    cfg = tiny_config(dataset, "method.name=masked", *METHODS["masked"])
    method = build_method(cfg, build_net("swinir", width=8, depths=[1], heads=2, win=4))
    attention = next(m for m in method.restorer.modules() if isinstance(m, Attention))
    seen = []
    attention.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    x = torch.rand(1, 3, 16, 16)
    method.restorer.train()
    method.restorer(x)
    zeroed = (seen[-1].abs().sum(-1) == 0).float().mean().item()
    assert 0.6 < zeroed < 0.9  # about 75% of the tokens
    method.restorer.eval()
    with torch.no_grad():
        method.restorer(x)
    assert (seen[-1].abs().sum(-1) > 0).all()  # nothing masked when restoring


def test_masked_training_refuses_a_restorer_without_attention(dataset):
    with pytest.raises(NoisedaError, match="masks the restorer's self-attention, and unet has none"):
        from noiseda.methods import build_method

        build_method(tiny_config(dataset, "method.name=masked"), build_net("unet", width=4))
    assert tiny_config(dataset, "method.name=masked", "method.options.masked.attention_mask_ratio=0")


def test_the_oracle_refuses_synthetic_data(dataset, tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "run"), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["method.name=oracle"]:
        argv += ["--set", s]
    assert main(argv) == 2
    assert "method oracle trains on real pairs" in capsys.readouterr().err


def test_compare_methods_runs_every_method_against_vanilla(dataset, tmp_path, capsys):
    out = tmp_path / "methods"
    argv = ["compare-methods", "--out", str(out), "--test-set", f"val={dataset['val']}", "--seeds", "0",
            "--methods", "dann", "ne2ne", "--oracle-pairs", str(dataset["val"]), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["train.steps=2", "train.checkpoint_every=2"]:
        argv += ["--set", s]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for method in ("vanilla", "dann", "ne2ne", "oracle"):
        assert f"| {method} |" in printed
        assert (out / "runs" / method / "seed-0" / "scores.json").is_file()
    assert "30.09 / 0.7832 / 0.1348" in printed and (out / "methods.md").is_file()
    assert main(["compare-methods", "--out", str(out), "--test-set", "v=x", "--methods", "cyclegan"]) == 2
    assert "unknown method 'cyclegan'" in capsys.readouterr().err


def test_pixelda_gives_each_side_of_the_game_only_its_own_gradient(dataset):
    from noiseda.methods import build_method
    from noiseda.methods.parts.gan import frozen, gan_loss
    from conftest import tiny_config

    cfg = tiny_config(dataset, "method.name=pixelda")
    method = build_method(cfg, build_net("unet", width=4))
    x = torch.rand(2, 3, 16, 16)
    fake = method.generator(x, torch.randn(2, 1, 16, 16))
    assert torch.allclose(fake, x)  # the generator starts as the identity
    gan_loss(frozen(method.discriminator, fake), True).backward()  # the generator's adversarial term
    assert all(p.grad is None for p in method.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.generator.parameters())

    # Through the whole loss: lambda weights what the generator gets from the discriminator,
    # never what the discriminator learns.
    batch = Batch(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))

    def grads(lam):
        method.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        method(batch, lam)["total"].backward()
        return ([p.grad.clone() for p in method.discriminator.parameters()],
                [p.grad.clone() for p in method.generator.parameters()])

    (d0, g0), (d1, g1) = grads(0.0), grads(1.0)
    assert all(torch.allclose(a, b) for a, b in zip(d0, d1))
    assert not all(torch.allclose(a, b) for a, b in zip(g0, g1))


def test_dsn_codes_and_losses(dataset):
    from noiseda.methods import build_method
    from noiseda.methods.dsn import difference_loss
    from conftest import tiny_config

    method = build_method(tiny_config(dataset, "method.name=dsn"), build_net("unet", width=4))
    x = torch.rand(2, 3, 16, 16)
    code = method.private["real"](x)
    assert code.shape == (2, 32, 2, 2)  # the U-Net's bottleneck at 16 px: 8 x width channels, 1/8 size
    assert method.decoder(code).shape == (2, 3, 16, 16)
    # S^T P over the batch: zero when no shared feature co-varies with any private one.
    shared, private = torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert difference_loss(shared, private) == 0
    assert difference_loss(shared, shared) == pytest.approx(1.0)  # one unit-norm row, fully correlated
    # The n x n Gram form equals the paper's ||S^T P||_F^2 (a d x d product) on random codes.
    s, p = torch.randn(5, 40, dtype=torch.float64), torch.randn(5, 40, dtype=torch.float64)
    sn, pn = torch.nn.functional.normalize(s, dim=1), torch.nn.functional.normalize(p, dim=1)
    assert difference_loss(s, p).item() == pytest.approx((sn.t() @ pn).pow(2).sum().item(), rel=1e-6)


def test_the_domain_classifier_reads_features_the_restorer_cannot_inflate():
    """DANN's divergence (docs/results.md): through the reversal the restorer ascends the
    classifier's loss, and with raw features it could do so by scaling them up. Read scale-free,
    the loss does not change with their scale, and the reversed gradient has no component along
    the features, so it cannot grow them (to first order)."""
    from noiseda.methods.parts.features import DomainClassifier, domain_loss

    torch.manual_seed(0)
    classifiers = torch.nn.ModuleDict({"f": DomainClassifier(8)})
    features = torch.randn(4, 8, 6, 6)
    losses = {}
    for normalize in (False, True):
        for scale in (1.0, 10.0):
            losses[normalize, scale] = domain_loss(classifiers, {"f": features * scale}, 2, 1.0, normalize).item()
    assert losses[True, 1.0] == pytest.approx(losses[True, 10.0], rel=1e-5)
    assert losses[False, 1.0] != pytest.approx(losses[False, 10.0], rel=1e-2)  # raw: the scale is a lever
    f = features.clone().requires_grad_()
    domain_loss(classifiers, {"f": f}, 2, 1.0, normalize=True).backward()
    assert abs((f.grad * f).sum().item()) < 1e-5 * f.grad.norm().item() * f.norm().item()


def test_compare_methods_puts_each_adversarial_method_on_its_own_schedule():
    from noiseda.methods.base import lambda_at
    from noiseda.experiments.compare_methods import methods_sweep
    from noiseda.experiments.sweep import run_config

    own = methods_sweep(None, ["train.steps=400", "method.lambda_weight=0.7"], {"v": "x"}, [0],
                        ["dann", "dsn", "pixelda", "ne2ne"])
    dann, dsn, pixelda = (run_config(own, m, 0).method for m in ("dann", "dsn", "pixelda"))
    assert (dann.lambda_weight, dann.lambda_slope, dann.lambda_ramp_steps) == (1.0, 10.0, 400)
    # DANN: lambda_p = 2 / (1 + exp(-10 p)) - 1, p the progress through training
    assert lambda_at(100, dann.lambda_weight, dann.lambda_slope, dann.lambda_ramp_steps) == pytest.approx(
        2 / (1 + math.exp(-2.5)) - 1)
    # PixelDA's and DSN's releases: their weight from the first step on, no ramp (PixelDA's
    # release weight 1 scaled to a restoration loss: a stated deviation)
    for m, weight in ((pixelda, 0.01), (dsn, 0.25)):
        assert [lambda_at(s, m.lambda_weight, m.lambda_slope, m.lambda_ramp_steps) for s in (1, 2, 400)] == [weight] * 3
    assert run_config(own, "ne2ne", 0).method.lambda_weight == 0.7  # not an adversarial method: untouched
    given = methods_sweep(None, ["train.steps=400"], {"v": "x"}, [0], ["dann", "dsn"], adversarial_weight=0.1)
    assert [run_config(given, m, 0).method.lambda_weight for m in ("dann", "dsn")] == [0.1, 0.1]


def test_pixelda_and_dsn_default_to_their_releases_losses_and_old_configs_keep_theirs(dataset):
    from noiseda.config import config_from_dict

    pixelda = tiny_config(dataset, "method.name=pixelda").method.options["pixelda"]
    dsn = tiny_config(dataset, "method.name=dsn").method.options["dsn"]
    assert (pixelda["content_weight"], pixelda["grad_clip"], dsn["lr_annealing"]) == (0.0, 5.0, True)
    old = config_from_dict({"method": {"name": "pixelda", "lambda_weight": 1.0, "lambda_slope": 10.0,
                                       "lambda_ramp_steps": 40, "t_range": [1, 999]}})
    assert old.method.options == {"pixelda": {"content_weight": 1.0, "grad_clip": 0.0}}
    with pytest.raises(NoisedaError, match="grad_clip: expected >= 0"):
        tiny_config(dataset, "method.name=pixelda", "method.options.pixelda.grad_clip=-1")


def test_c2n_trains_its_generator_first_then_the_restorer_on_generated_pairs(dataset):
    from noiseda.methods import build_method
    from noiseda.methods.c2n import gradient_penalty

    method = build_method(tiny_config(dataset, "method.name=c2n", "method.options.c2n.width=8"),
                          build_net("unet", width=4))
    gen, critic = method.generator, method.critic
    clean, code = torch.rand(2, 3, 16, 16), torch.randn(2, 32)
    noisy, noise = gen(clean, code)
    torch.testing.assert_close(noisy, clean + noise)
    again, _ = gen(clean, code)
    assert not torch.equal(noisy, again)  # the noise features are drawn anew: a distribution, not a map
    batch = Batch(torch.rand(2, 3, 16, 16), clean, torch.rand(2, 3, 16, 16))

    method.begin_step(1, 10)  # stage 1: generator and critic
    assert method.restorer_frozen(1) and method.stage() == "generator"
    method.zero_grad(set_to_none=True)
    out = method(batch, 0.0)
    assert "sup" not in out and {"wasserstein", "penalty", "fool", "zero_mean"} <= set(out)
    out["total"].backward()
    assert all(p.grad is None for p in method.restorer.parameters())
    assert any(p.grad is not None for p in gen.parameters()) and any(p.grad is not None for p in critic.parameters())

    method.begin_step(6, 10)  # stage 2: the restorer alone, on generated pairs
    assert not method.restorer_frozen(6)
    method.zero_grad(set_to_none=True)
    out = method(batch, 0.0)
    out["total"].backward()
    assert set(out) == {"total", "sup"}
    assert all(p.grad is None for p in [*gen.parameters(), *critic.parameters()])
    assert any(p.grad is not None for p in method.restorer.parameters())

    # the gradient penalty is 0 for a critic with gradient norm 1 everywhere, positive otherwise
    linear = torch.nn.Conv2d(3, 1, 1, bias=False)
    torch.nn.init.constant_(linear.weight, 1.0)
    per_pixel = lambda x: linear(x) / (3 ** 0.5 * 16)  # |d sum / d x| = 1  # noqa: E731
    assert gradient_penalty(per_pixel, clean, noisy.detach()).item() == pytest.approx(0, abs=1e-6)
    assert gradient_penalty(linear, clean, noisy.detach()).item() > 1


def test_cycada_trains_source_then_pixel_then_feature_stages(dataset):
    from noiseda.methods import build_method

    method = build_method(tiny_config(dataset, "method.name=cycada"), build_net("unet", width=4))
    batch = Batch(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    generators = [*method.to_real.parameters(), *method.to_synthetic.parameters()]
    judges = [*method.judge_real.parameters(), *method.judge_synthetic.parameters()]
    classifier = list(method.classifiers.parameters())

    def learners(step: int) -> tuple[set, dict]:
        method.begin_step(step, 9)
        method.zero_grad(set_to_none=True)
        out = method(batch, 1.0)
        out["total"].backward()
        if method.restorer_frozen(step):  # the step runner drops the frozen restorer's gradients
            method.restorer.zero_grad(set_to_none=True)
        got = {name for name, params in [("restorer", list(method.restorer.parameters())), ("generators", generators),
                                         ("judges", judges), ("classifier", classifier)]
               if any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)}
        return got, out

    got, out = learners(1)
    assert method.stage() == "source" and got == {"restorer"} and set(out) == {"total", "sup"}
    got, out = learners(4)
    assert method.stage() == "pixel" and got == {"generators", "judges"} and "consistency" in out
    assert method.lr_scale() == 1.0
    got, out = learners(8)
    assert method.stage() == "feature" and got == {"restorer", "classifier"} and method.lr_scale() == 0.1


def test_compare_methods_lists_each_method_for_its_own_tasks():
    from noiseda.experiments.compare_methods import methods_sweep

    denoise = methods_sweep(None, ["task=denoise"], {"v": "x"}, [0]).variants
    derain = methods_sweep(None, ["task=derain"], {"v": "x"}, [0]).variants
    deblur = methods_sweep(None, ["task=deblur"], {"v": "x"}, [0]).variants
    only_denoising, only_deraining = {"ne2ne", "c2n", "ap-bsn"}, {"nlcl"}
    assert only_denoising <= set(denoise) and not only_denoising & (set(derain) | set(deblur))
    assert only_deraining <= set(derain) and not only_deraining & (set(denoise) | set(deblur))
    assert set(denoise) - only_denoising == set(derain) - only_deraining == set(deblur)
    assert "net.name=ap-bsn" in denoise["ap-bsn"]  # it trains its own blind-spot net, the others the config's


def test_each_adversarial_method_gets_dann_schedules_unless_the_config_sets_them(dataset):
    from noiseda.config import config_from_dict

    dann = tiny_config(dataset, "method.name=dann", "method.lambda_ramp_steps=null", "train.steps=40")
    m = dann.method
    assert (m.lambda_weight, m.lambda_slope, m.lambda_ramp_steps) == (1.0, 10.0, 40)  # recorded as numbers
    assert m.options["dann"]["lr_annealing"]
    assert tiny_config(dataset, "method.name=dann", "method.lambda_weight=0.1").method.lambda_weight == 0.1
    noise_da = tiny_config(dataset, "method.lambda_ramp_steps=null").method
    assert (noise_da.lambda_weight, noise_da.lambda_slope, noise_da.lambda_ramp_steps) == (0.2, 5.0, 0)
    # a config from before per-method options keeps the schedule it ran with
    old = config_from_dict({"method": {"name": "dann", "features": [], "lambda_weight": 1.0, "lambda_slope": 10.0,
                                       "lambda_ramp_steps": 40, "t_range": [1, 999]}})
    assert old.method.options == {"dann": {"features": [], "lr_annealing": False, "normalize_features": False}}


def test_dann_anneals_its_learning_rate_over_the_run(dataset, tmp_path):
    from noiseda.training.loop import train

    train(tiny_config(dataset, "method.name=dann", "train.steps=6", "train.lr=1e-3"), tmp_path / "r", progress=False)
    lrs = {r["step"]: r["train/lr"] for r in read_metrics(tmp_path / "r") if "train/lr" in r}
    # lr0 / (1 + 10 p)^0.75 with p = (step - 1) / steps at the logged steps 2, 4, 6
    assert lrs == {s: pytest.approx(1e-3 / (1 + 10 * (s - 1) / 6) ** 0.75) for s in (2, 4, 6)}


def test_the_tv_prior_reaches_the_restorer_through_the_real_images_only():
    from noiseda.methods.tv_prior import TVPrior, total_variation
    from noiseda.config import load_config

    flat = torch.full((1, 3, 8, 8), 0.5)
    assert total_variation(flat).item() == pytest.approx(2e-3)  # eps per direction, no variation
    stripes = flat.clone()
    stripes[..., ::2] = 0.0
    assert total_variation(stripes).item() > 0.2
    cfg = load_config(None, TINY + ["method.name=tv-prior"])
    torch.manual_seed(0)
    core = TVPrior(cfg, build_net("unet", width=4))
    batch = Batch(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    out = core(batch, 0.0)
    assert torch.equal(out["total"], out["sup"]) and out["tv_real"] > 0  # lambda 0: vanilla
    real = batch.real.clone().requires_grad_(True)
    syn = batch.synthetic.clone().requires_grad_(True)
    out = core(dataclasses.replace(batch, real=real, synthetic=syn), 1.0)
    g_real, = torch.autograd.grad(out["total"] - out["sup"], real, retain_graph=True)
    g_syn, = torch.autograd.grad(out["total"] - out["sup"], syn)
    assert g_real.abs().sum() > 0 and g_syn.abs().sum() == 0


def test_nlcls_contrasts_reward_matching_locations_and_separating_rain_from_background():
    from noiseda.methods.nlcl import layer_contrast, patch_nce, projector

    torch.manual_seed(0)
    mlp = projector(16)
    features = torch.randn(2, 16, 6, 6)
    shuffled = features.flatten(2)[..., torch.randperm(36)].view(2, 16, 6, 6)
    # location contrast: the same location in the two maps is the positive
    assert patch_nce(features, features, mlp, 36, 0.07) < patch_nce(features, shuffled, mlp, 36, 0.07)
    # layer contrast: rain locations unlike the background are easy negatives
    background = torch.randn(2, 16, 6, 6)
    assert (layer_contrast(background, -background, mlp, 8, 36, 0.07)
            < layer_contrast(background, background.roll(1, dims=3), mlp, 8, 36, 0.07))
