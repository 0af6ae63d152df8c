"""Training killed with SIGKILL at random moments resumes to exactly the uninterrupted result."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from noiseda.training.checkpoint import list_checkpoints, load_checkpoint

from conftest import TINY, data_overrides

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
STEPS = 30


def _command(dataset, out, resume=False):
    args = [sys.executable, "-m", "noiseda", "train", "--out", str(out), "--no-progress"]
    for s in TINY + data_overrides(dataset) + [f"train.steps={STEPS}", "train.checkpoint_every=1",
                                               "train.keep_checkpoints=2", "train.val_every=10"]:
        args += ["--set", s]
    return args + (["--resume"] if resume else [])


def _last_step(run) -> int:
    done = list_checkpoints(run)
    return int(done[-1].name.split("-")[1]) if done else 0


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(dataset, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(_command(dataset, tmp_path / "straight"), check=True, capture_output=True, env=env, timeout=300)

    run, rng, kills, progress_kills = tmp_path / "killed", random.Random(0), 0, 0
    for attempt in range(12):
        before = _last_step(run)
        proc = subprocess.Popen(_command(dataset, run, before > 0), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 120
        while _last_step(run) <= before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)  # until this process has trained and saved at least one step
        time.sleep(rng.uniform(0.0, 0.3))  # then somewhere in a step or in a checkpoint write
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
            progress_kills += _last_step(run) > before
        proc.wait(timeout=60)
        done = (run / "final" / "restorer.safetensors").is_file() and proc.returncode == 0
        checkpoints = list_checkpoints(run)
        if checkpoints:
            load_checkpoint(checkpoints[-1])  # the last complete checkpoint always loads
        if done:
            break
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()[-2000:]
    else:
        # still unfinished after the kills: finish without interruption
        subprocess.run(_command(dataset, run, True), check=True, capture_output=True, env=env, timeout=300)
    assert kills >= 3 and progress_kills >= 3
    for part in ("final/restorer.safetensors", f"checkpoints/step-{STEPS:08d}/model.safetensors",
                 f"checkpoints/step-{STEPS:08d}/ema.safetensors"):
        a, b = load_file(tmp_path / "straight" / part), load_file(run / part)
        assert all(torch.equal(a[k], b[k]) for k in a), part
