"""Adapting a trained restorer: train.init / --init, and a warm-up with the restorer frozen."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from noiseda.cli import main
from noiseda.training.loop import train

from conftest import TINY, data_overrides, tiny_config
from test_official import _their_keys


def _restorer(folder):
    return load_file(str(folder / "restorer.safetensors"))


def _checkpoint_restorer(run, step):
    full = load_file(str(run / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))
    return {k.removeprefix("restorer."): v for k, v in full.items() if k.startswith("restorer.")}


@pytest.fixture
def trained(dataset, tmp_path):
    """A 6-step vanilla run: the 'trained restorer' to start from."""
    run = tmp_path / "start"
    train(tiny_config(dataset, "method.name=vanilla"), run, progress=False)
    return run


@pytest.mark.parametrize("source", ["run", "export"])
def test_a_run_starts_from_the_given_weights(dataset, tmp_path, trained, source):
    weights = trained if source == "run" else trained / "final"
    cfg = tiny_config(dataset, "train.steps=1", "train.lr=1e-12", f"train.init={weights}")
    train(cfg, tmp_path / "adapted", progress=False)
    start, after = _restorer(trained / "final"), _checkpoint_restorer(tmp_path / "adapted", 1)
    # One step at lr 1e-12 moves no weight by more than float rounding around the start.
    assert all(torch.allclose(after[k], start[k], rtol=0, atol=1e-6) for k in start)
    fresh = tiny_config(dataset, "train.steps=1", "train.lr=1e-12")
    train(fresh, tmp_path / "fresh", progress=False)
    scratch = _checkpoint_restorer(tmp_path / "fresh", 1)
    assert any(not torch.allclose(scratch[k], start[k], atol=1e-5) for k in start)


def test_init_leaves_the_diffusion_net_as_a_fresh_run_of_the_same_seed(dataset, tmp_path, trained):
    # At lr 1e-12 the step-1 checkpoint holds the initial weights up to rounding.
    for name, extra in (("a", [f"train.init={trained}"]), ("b", [])):
        train(tiny_config(dataset, "train.steps=1", "train.lr=1e-12", *extra), tmp_path / name, progress=False)
    a = load_file(str(tmp_path / "a/checkpoints/step-00000001/model.safetensors"))
    b = load_file(str(tmp_path / "b/checkpoints/step-00000001/model.safetensors"))
    diffusion = [k for k in a if k.startswith("diffusion.")]
    assert diffusion and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in diffusion)
    assert any(not torch.allclose(a[k], b[k], atol=1e-5) for k in a if k.startswith("restorer."))


def test_an_imported_official_checkpoint_is_a_start(dataset, tmp_path):
    torch.manual_seed(0)
    from noiseda.nets import build_net

    net = build_net("unet-t").eval()
    torch.save(_their_keys(net.state_dict()), tmp_path / "model_ema.pth")
    assert main(["import-official", str(tmp_path / "model_ema.pth"), "--task", "denoise",
                 "--out", str(tmp_path / "imported")]) == 0
    over = [o for o in TINY if not o.startswith("net.")] + data_overrides(dataset)
    args = ["train", "--init", str(tmp_path / "imported"), "--out", str(tmp_path / "adapted"), "--no-progress"]
    for o in over + ["net.name=unet-t", "train.steps=1", "train.lr=1e-12"]:
        args += ["--set", o]
    assert main(args) == 0
    after = _checkpoint_restorer(tmp_path / "adapted", 1)
    assert all(torch.allclose(after[k], v, rtol=0, atol=1e-6) for k, v in net.state_dict().items())


def test_a_frozen_warm_up_changes_no_restorer_weight_and_trains_the_diffusion_net(dataset, tmp_path, trained):
    cfg = tiny_config(dataset, f"train.init={trained}", "train.checkpoint_every=1", "train.keep_checkpoints=8", "train.steps=4",
                      "method.options.noise-da.diffusion_warmup_steps=3", "method.options.noise-da.warmup_freezes_restorer=true")
    run = tmp_path / "adapted"
    train(cfg, run, progress=False)
    start = _restorer(trained / "final")
    for step in (1, 2, 3):
        frozen = _checkpoint_restorer(run, step)
        assert all(torch.equal(frozen[k], start[k]) for k in start), step
        ema = load_file(str(run / "checkpoints" / f"step-{step:08d}" / "ema.safetensors"))
        assert all(torch.equal(ema[k], start[k]) for k in start), step
    moved = _checkpoint_restorer(run, 4)  # the first joint step updates it
    assert any(not torch.equal(moved[k], start[k]) for k in start)
    d1 = load_file(str(run / "checkpoints/step-00000001/model.safetensors"))
    d3 = load_file(str(run / "checkpoints/step-00000003/model.safetensors"))
    assert any(not torch.equal(d1[k], d3[k]) for k in d1 if k.startswith("diffusion."))


@pytest.mark.parametrize("extra, message", [
    (["net.width=8"], r"train.init: .* holds a restorer with kwargs \{'width': 4\}, this run trains kwargs \{'width': 8\}"),
    (["data.value_range=[-1,1]"], r"train.init: .* value_range"),
])
def test_a_start_of_another_net_is_one_line(dataset, tmp_path, trained, capsys, extra, message):
    args = ["train", "--init", str(trained), "--out", str(tmp_path / "x"), "--no-progress"]
    for o in TINY + data_overrides(dataset) + extra:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "x").exists()


def test_missing_start_and_init_with_resume_are_one_line(dataset, tmp_path, trained, capsys):
    base = ["train", "--out", str(tmp_path / "x"), "--no-progress"]
    for o in TINY + data_overrides(dataset):
        base += ["--set", o]
    assert main(base + ["--init", str(tmp_path / "nowhere")]) == 2
    assert "train.init: weights not found" in capsys.readouterr().err
    assert main(base + ["--init", str(trained), "--resume"]) == 2
    assert "--init starts a run" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_freezing_needs_a_warm_up(dataset):
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match="warmup_freezes_restorer"):
        tiny_config(dataset, "method.options.noise-da.warmup_freezes_restorer=true")
