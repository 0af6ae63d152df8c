"""probe-gradient: alignment of the noise loss's gradient with the truth, on cases with a known answer."""

from __future__ import annotations

import json
import math

import pytest
import torch

from noiseda.methods import build_method
from noiseda.methods.base import Batch, charbonnier
from noiseda.methods.noise_da.alignment import gaussian_blur, measure
from noiseda.cli import main
from noiseda.nets import build_net
from noiseda.training.loop import net_kwargs, train

from conftest import tiny_config


@pytest.fixture
def core(dataset):
    cfg = tiny_config(dataset)
    torch.manual_seed(0)
    return build_method(cfg, build_net(cfg.net.name, **net_kwargs(cfg)))


def _batch(n=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    gt_s, gt_r = torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g)
    noisy = lambda t: (t + 0.1 * torch.randn(t.shape, generator=g)).clamp(0, 1)  # noqa: E731
    return Batch(synthetic=noisy(gt_s), clean=gt_s, real=noisy(gt_r)), gt_r


def _stand_in(core, loss):
    """Replace the noise loss by ``loss(batch, y_s, y_r)``: a noise predictor whose answer we know."""
    core.noise_loss = lambda batch, y_s, y_r: {"noise": loss(batch, y_s, y_r)}
    return core


def test_a_noise_loss_that_is_the_oracle_loss_has_cosine_one(core):
    batch, gt_r = _batch()
    _stand_in(core, lambda b, y_s, y_r: charbonnier(y_s, b.clean) + charbonnier(y_r, gt_r))
    r = measure(core, batch, gt_r, draws=3)
    for branch in ("real", "synthetic"):
        assert r[branch]["truth"] == pytest.approx(1, abs=1e-6)
        assert r[branch]["truth_dc"] == pytest.approx(1, abs=1e-6) and r[branch]["truth_ac"] == pytest.approx(1, abs=1e-6)
        assert all(c == pytest.approx(1, abs=1e-6) for c in r[branch]["truth_per_image"])
        assert r[branch]["param_truth"] == pytest.approx(1, abs=1e-6)
        assert r[branch]["snr"] == pytest.approx(1, abs=1e-6)  # no randomness: every draw agrees
        assert r[branch]["param_ratio"] == pytest.approx(1, rel=1e-5)


def test_a_noise_loss_that_ignores_the_real_slot_has_cosine_zero_there(core):
    batch, gt_r = _batch()
    _stand_in(core, lambda b, y_s, y_r: charbonnier(y_s, b.clean))
    r = measure(core, batch, gt_r, draws=2)
    assert r["real"]["truth"] == 0 and r["real"]["param_truth"] == 0 and r["real"]["param_ratio"] == 0
    assert r["synthetic"]["truth"] == pytest.approx(1, abs=1e-6)


def test_a_sign_flipped_noise_loss_has_cosine_minus_one(core):
    batch, gt_r = _batch()
    _stand_in(core, lambda b, y_s, y_r: -charbonnier(y_r, gt_r))
    r = measure(core, batch, gt_r, draws=2)
    assert r["real"]["truth"] == pytest.approx(-1, abs=1e-6)
    assert r["real"]["param_truth"] == pytest.approx(-1, abs=1e-6)


def test_the_control_directions_name_what_the_signal_does(core):
    batch, gt_r = _batch()
    # Pull the real outputs toward their own blur: the smoothing direction, exactly.
    _stand_in(core, lambda b, y_s, y_r: 0.5 * ((y_r - gaussian_blur(y_r).detach()) ** 2).sum())
    assert measure(core, batch, gt_r, draws=2)["real"]["smooth"] == pytest.approx(1, abs=1e-6)
    # Pull them toward the degraded input: keeping the degradation.
    _stand_in(core, lambda b, y_s, y_r: 0.5 * ((y_r - b.real) ** 2).sum())
    assert measure(core, batch, gt_r, draws=2)["real"]["input"] == pytest.approx(1, abs=1e-6)


def test_a_pull_on_the_mean_colour_only_is_dc_not_ac(core):
    batch, gt_r = _batch()
    # Match only each image's mean colour to the truth's: aligned in DC, unrelated in AC.
    mean = lambda t: t.mean(dim=(-2, -1))  # noqa: E731
    _stand_in(core, lambda b, y_s, y_r: ((mean(y_r) - mean(gt_r)) ** 2).sum())
    r = measure(core, batch, gt_r, draws=2)["real"]
    # A constant per image and channel has no AC part at all; its DC agrees with the oracle's
    # (Charbonnier's DC is the mean sign of y - gt, not the mean of y - gt, so not exactly 1).
    assert abs(r["truth_ac"]) < 1e-6 and r["truth_dc"] > 0.5


def test_random_draws_lower_the_snr(core):
    batch, gt_r = _batch()
    _stand_in(core, lambda b, y_s, y_r: (y_r * torch.randn_like(y_r)).sum())  # pure noise around zero
    r = measure(core, batch, gt_r, draws=16)
    assert r["real"]["snr"] < 0.5  # about 1/sqrt(16) for independent draws
    assert abs(r["real"]["truth"]) < 0.5


def test_measuring_the_real_noise_loss_changes_no_weight_gradient_or_random_stream(core):
    batch, gt_r = _batch()
    before = {k: v.clone() for k, v in core.state_dict().items()}
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    r = measure(core, batch, gt_r, draws=3)
    assert torch.equal(torch.rand(3), expected)  # the global stream is where it was
    assert all(torch.equal(v, before[k]) for k, v in core.state_dict().items())
    assert all(p.grad is None for p in core.parameters())
    for branch in ("real", "synthetic"):
        for key in ("truth", "smooth", "input", "param_truth"):
            assert -1 - 1e-9 <= r[branch][key] <= 1 + 1e-9 and math.isfinite(r[branch][key])
        assert 0 < r[branch]["snr"] <= 1 + 1e-9
    again = measure(core, batch, gt_r, draws=3)  # seeded draws: repeatable
    assert again["real"]["truth"] == r["real"]["truth"]


def test_probe_gradient_reads_every_checkpoint_of_a_run(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(dataset, "train.keep_checkpoints=5"), run, progress=False)
    out = tmp_path / "probe"
    pairs = dataset["val"]
    assert main(["probe-gradient", "--run", str(run), "--pairs", f"val={pairs}", f"again={pairs}",
                 "--images", "2", "--draws", "3", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "gradient.json").read_text())
    assert [(r["step"], r["pairs"]) for r in res["rows"]] == [(3, "val"), (3, "again"), (6, "val"), (6, "again")]
    assert res["rows"][0]["real"]["truth"] == res["rows"][1]["real"]["truth"]  # same crops, same draws
    assert res["rows"][0]["lambda_at_step"] > 0
    assert (out / "gradient.png").stat().st_size > 0
    assert len((out / "gradient.csv").read_text().splitlines()) == 5
    assert "real branch cosine with the truth" in capsys.readouterr().out
    assert main(["probe-gradient", "--run", str(run), "--pairs", str(pairs), "--steps", "6", "--t-range", "1", "100",
                 "--images", "2", "--draws", "2", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "gradient.json").read_text())
    assert [(r["step"], r["t_range"]) for r in res["rows"]] == [(6, [1, 100])]


def test_probe_gradient_refuses_runs_without_a_noise_loss(dataset, tmp_path, capsys):
    run = tmp_path / "vanilla"
    train(tiny_config(dataset, "method.name=vanilla"), run, progress=False)
    assert main(["probe-gradient", "--run", str(run), "--pairs", str(dataset["val"]), "--out",
                 str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no noise loss" in err
    assert not (tmp_path / "p").exists()


def test_the_tv_control_direction_and_its_matched_weight(core):
    from noiseda.methods.tv_prior import total_variation

    batch, gt_r = _batch()
    # A noise loss that is 3 x the tv-prior penalty on the real outputs: cosine 1 with the tv
    # direction, and its parameter-space strength is 3 x tv_param_ratio (per unit of lambda).
    _stand_in(core, lambda b, y_s, y_r: 3 * total_variation(y_r))
    r = measure(core, batch, gt_r, draws=2, lam=1.0)["real"]
    assert r["tv"] == pytest.approx(1, abs=1e-6)
    assert r["param_share_at_lambda"] == pytest.approx(3 * r["tv_param_ratio"], rel=1e-5)
