"""`noiseda probe-conditions` (the paper's Fig. 1(a)): trained or taken from a run, a paired curve."""

import csv

import torch

from noiseda.cli import main
from noiseda.methods.noise_da.diffusion import GammaSchedule
from noiseda.config import load_config
from noiseda.diagnostics.probe_conditions import condition_curve

from conftest import TINY, data_overrides


def _sets(dataset, *extra):
    argv = []
    for s in TINY + data_overrides(dataset) + list(extra):
        argv += ["--set", s]
    return argv


def test_probe_trains_a_diffusion_net_and_writes_the_curve(dataset, tmp_path, capsys):
    out = tmp_path / "probe"
    assert main(["probe-conditions", "--out", str(out), "--steps", "3", "--sigmas", "0", "40", "80",
                 "--images", "2", "--no-progress", *_sets(dataset)]) == 0
    rows = list(csv.DictReader((out / "conditions.csv").open()))
    assert [float(r["sigma"]) for r in rows] == [0.0, 40.0, 80.0]
    assert all(float(r["mse"]) > 0 for r in rows)
    assert (out / "conditions.png").is_file() and (out / "conditions.json").is_file()
    assert "at sigma 0 ->" in capsys.readouterr().out


def test_probe_reads_a_noise_da_runs_diffusion_net(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--no-progress", *_sets(dataset, "method.name=noise-da")]) == 0
    assert main(["probe-conditions", "--run", str(run), "--out", str(tmp_path / "p"), "--images", "2",
                 "--sigmas", "0", "50", "--no-progress"]) == 0
    assert "the diffusion net of" in (tmp_path / "p" / "conditions.json").read_text()
    vanilla = tmp_path / "vanilla"
    assert main(["train", "--out", str(vanilla), "--no-progress", *_sets(dataset, "method.name=vanilla")]) == 0
    assert main(["probe-conditions", "--run", str(vanilla), "--out", str(tmp_path / "q")]) == 2
    assert "has no diffusion net" in capsys.readouterr().err
    assert main(["probe-conditions", "--out", str(tmp_path / "r"), "--sigmas", "-5", *_sets(dataset)]) == 2
    assert not (tmp_path / "r").exists()


def test_the_curve_is_paired_and_sees_the_condition(dataset):
    """A net that predicts the noise from how far its condition is from y_t's clean part: its loss
    must grow with sigma, and sigma 0 is measured on the same draws as every other sigma."""
    cfg = load_config(None, TINY)

    class ReadsTheCondition(torch.nn.Module):
        def forward(self, y_t, c1, c2, gamma):
            g = gamma.view(-1, 1, 1, 1)
            return (y_t - g.sqrt() * c1) / (1 - g).sqrt()  # exact when c1 is the clean image

    images = torch.rand(2, 3, 16, 16)
    rows = condition_curve(ReadsTheCondition(), GammaSchedule(cfg.diffusion), images, [0, 10, 40],
                           [1, 999], cfg.data.value_range)
    assert rows[0]["mse"] < 1e-8 and rows[0]["sd"] < 1e-8
    assert rows[0]["mse"] < rows[1]["mse"] < rows[2]["mse"]
