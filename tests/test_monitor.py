"""The shortcut monitor: it never changes training, it logs and draws what it measures, and it
warns when the diffusion net ignores the real condition."""

import torch
from safetensors.torch import load_file

from noiseda.methods import build_method
from noiseda.methods.base import MonitorContext
from noiseda.data.setup import build_samples
from noiseda.inference.tiling import to_model_range
from noiseda.methods.noise_da.monitor import ShortcutMonitor
from noiseda.nets import build_net
from noiseda.evaluation.report import read_metrics
from noiseda.training.loop import train

from conftest import tiny_config


def test_the_monitor_leaves_training_bitwise_untouched_and_shows_what_it_saw(dataset, tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    train(tiny_config(dataset, "method.name=noise-da"), on, progress=False)
    train(tiny_config(dataset, "method.name=noise-da", "train.monitor=false"), off, progress=False)
    for part in ("final/restorer.safetensors", "checkpoints/step-00000006/model.safetensors"):
        a, b = load_file(on / part), load_file(off / part)
        assert all(torch.equal(a[k], b[k]) for k in a), part
    probes = [r for r in read_metrics(on) if "probe/real_slot_ratio" in r]
    assert [r["step"] for r in probes] == [3, 6]  # every validation step
    assert all(r["probe/real_slot_ratio"] > 0 and r["probe/syn_slot_ratio"] > 0 for r in probes)
    # The run has real-domain validation pairs, so the monitor also reads the gradient's alignment.
    for key in ("align/real_truth", "align/real_smooth", "align/real_input", "align/synt_truth", "align/real_snr"):
        assert all(-1 <= r[key] <= 1 for r in probes), key
    assert sorted(p.name for p in (on / "monitor").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    report = (on / "report.md").read_text()
    assert "## Shortcut monitor" in report and "monitor/step-00000006.png" in report
    assert not any("probe/real_slot_ratio" in r for r in read_metrics(off)) and not (off / "monitor").exists()


def _monitor(dataset, tmp_path):
    cfg = tiny_config(dataset, "method.name=noise-da")
    core = build_method(cfg, build_net("unet", width=4))
    samples = build_samples(cfg, True, False, progress=False)
    context = MonitorContext(samples=samples, seed=0, degrade_batch=None, device=torch.device("cpu"),
                             to_model=lambda v: to_model_range(v, cfg.data.value_range),
                             to_image=lambda v: v.clamp(0, 1), folder=tmp_path / "samples")
    return core, ShortcutMonitor(core, context, core.options.t_range)


def test_the_warning_fires_when_the_real_slot_is_ignored(dataset, tmp_path):
    core, monitor = _monitor(dataset, tmp_path)
    values, warning = monitor(1, lam_at_ceiling=True)
    assert warning is None and values["probe/real_slot_ratio"] != 1.0  # a fresh net reads both slots

    forward = core.diffusion.forward  # now a diffusion net that ignores whatever is in slot 2
    core.diffusion.forward = lambda y_t, c1, c2, gamma: forward(y_t, c1, torch.zeros_like(c2), gamma)
    values, warning = monitor(2, lam_at_ceiling=False)
    assert values["probe/real_slot_ratio"] == 1.0 and warning is None  # lambda still ramping: no verdict
    assert monitor(3, lam_at_ceiling=True)[1] is None  # once may be chance
    values, warning = monitor(4, lam_at_ceiling=True)
    assert warning is not None and "no longer reads the real condition" in warning
    assert monitor(5, lam_at_ceiling=True)[1] is None  # said once


def test_probes_are_repeatable(dataset, tmp_path):
    _, monitor = _monitor(dataset, tmp_path)
    assert monitor(1, True)[0] == monitor(2, True)[0]  # same batch, same noise: comparable over training


def test_training_warns_once_lambda_has_ramped_and_the_real_slot_is_ignored(dataset, tmp_path, monkeypatch, capsys):
    """Through train(): a diffusion net whose loss does not see the real slot, with the default
    lambda slope (whose ramp ends at 0.987 of lambda_weight, not 1)."""
    from noiseda.methods.noise_da.method import NoiseDA

    def ignoring(self, batch, gamma, eps):
        return {"mse": 0.5, "mse_real_raw": 0.5, "mse_syn_raw": 2.0, "restored_real": batch.real}

    monkeypatch.setattr(NoiseDA, "condition_losses", ignoring)
    cfg = tiny_config(dataset, "method.name=noise-da", "train.steps=9", "method.lambda_ramp_steps=2")
    train(cfg, tmp_path / "run", progress=True)
    out = capsys.readouterr()
    assert (out.out + out.err).count("no longer reads the real condition") == 1  # at step 6, said once
