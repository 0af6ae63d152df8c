"""The degraded input's score sits beside every validation score (log, metrics.jsonl, report),
and a run that scores below its own inputs says so once."""

from __future__ import annotations

import json

from noiseda.cli import main
from noiseda.evaluation.metrics import psnr
from noiseda.evaluation.scoring import input_rows, mean_scores

from conftest import TINY, data_overrides


def test_a_restorer_below_its_inputs_is_named_in_the_log_metrics_and_report(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["method.name=vanilla"]:
        argv += ["--set", s]
    assert main(argv) == 0  # 6 steps of a 4-wide U-Net: far below the lightly noisy inputs
    out = capsys.readouterr().out
    assert out.count("below their degraded inputs") == 1  # once, not at every validation
    vals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "val/psnr" in r]
    assert len(vals) == 2 and all(r["val/input_psnr"] > r["val/psnr"] + 5 for r in vals)
    assert vals[0]["val/input_psnr"] == vals[1]["val/input_psnr"]  # the same images every time
    report = (run / "report.md").read_text()
    assert f"| degraded input | | {vals[-1]['val/input_psnr']:.2f} |" in report
    assert "training made these images worse" in report


def test_input_scores_are_the_inputs_own_psnr():
    import torch

    y = torch.rand(1, 3, 16, 16)  # as load_validation gives them
    x = (y + 0.1 * torch.randn_like(y)).clamp(0, 1)
    scores = mean_scores(input_rows([("a", x, y), ("b", y, y.clone() * 0.9)], y_channel=False), "val/input_")
    assert abs(scores["val/input_psnr"] - (psnr(x, y, False) + psnr(y, y * 0.9, False)) / 2) < 1e-9
