"""--threads on every command that computes, and one note when training slows down (another
process on the cores: measured 5-10x slower on a shared 2-core machine)."""

from __future__ import annotations

import torch
import yaml

from noiseda.cli import main
from noiseda.training.progress import SlowdownWatch

from conftest import TINY, data_overrides, write_images


def test_a_collapse_of_the_step_rate_is_noted_once():
    watch = SlowdownWatch()
    assert [watch(r) for r in (10.0, 12.0, 11.0, 5.0)] == [False] * 4  # ordinary jitter: no note
    assert watch(3.9) is True  # below a third of the best (12)
    assert watch(1.0) is False and watch.fastest == 12.0  # once


def test_threads_reach_the_run_config_and_bad_values_are_one_line(dataset, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        argv = ["train", "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]
        for s in TINY + data_overrides(dataset) + ["method.name=vanilla", "train.threads=0"]:
            argv += ["--set", s]
        assert main(argv) == 0
        assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["threads"] == 1
        write_images(tmp_path / "in", 1)
        assert main(["restore", "--weights", str(tmp_path / "run"), "--input", str(tmp_path / "in"),
                     "--output", str(tmp_path / "out"), "--no-progress", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    for command in (["evaluate", "--weights", "w", "--pairs", "p"], ["demo"], ["sweep", "s.yaml", "--out", "o"]):
        try:
            main(command + ["--threads", "0"])
        except SystemExit as exc:
            assert exc.code == 2
        assert "--threads: expected a number of threads >= 1, got '0'" in capsys.readouterr().err


def test_the_command_line_makes_idle_openmp_threads_sleep_unless_told_otherwise():
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    probe = "import noiseda.cli, os; print(os.environ['OMP_WAIT_POLICY'])"
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        if given:
            env["OMP_WAIT_POLICY"] = given
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == expected


def test_a_new_training_stage_restarts_the_slowdown_watch_and_is_announced():
    """Staged methods (C2N, CyCADA) change their step's cost with the stage: that is no slowdown."""
    from noiseda.config import load_config
    from noiseda.training.progress import RunNotes

    written = []
    notes = RunNotes(written.append, True, load_config("tiny-cpu", ["train.steps=100"]), torch.device("cpu"))
    for step, rate, stage in [(10, 50.0, "source"), (20, 50.0, "source"), (30, 40.0, "source"), (40, 5.0, "pixel"),
                              (50, 5.0, "pixel")]:
        notes.after_interval(step, rate, 0.0, stage)
    assert "stage: pixel from step 40" in written
    assert not any("slowed" in w for w in written)
    notes.after_interval(60, 1.0, 0.0, "pixel")  # a third of the stage's own best: a real slowdown
    assert any("slowed to 1 steps/s from 5" in w for w in written)
