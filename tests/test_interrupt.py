"""Ctrl-C or SIGTERM during training saves a checkpoint and says how to resume; a resumed run is
bitwise the uninterrupted one; a folder holding an earlier run is never silently mixed into."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import noiseda.training.loop
from noiseda.training.checkpoint import list_checkpoints
from noiseda.cli import main

from conftest import TINY, data_overrides


def _argv(dataset, out, *extra):
    argv = ["train", "--out", str(out), "--no-progress"]
    for s in TINY + data_overrides(dataset):
        argv += ["--set", s]
    return argv + list(extra)


def _signal_at(monkeypatch, step: int, signum: int):
    """Send ``signum`` to this process right after training step ``step`` (the handler runs there)."""
    real = noiseda.training.loop.StepRunner

    class Signalling(real):
        calls = 0

        def __call__(self, batch, lam, **kwargs):
            out = super().__call__(batch, lam, **kwargs)
            Signalling.calls += 1
            if Signalling.calls == step:
                os.kill(os.getpid(), signum)
            return out

    monkeypatch.setattr(noiseda.training.loop, "StepRunner", Signalling)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_an_early_step_saves_and_the_printed_command_resumes_exactly(
        dataset, tmp_path, capsys, monkeypatch, signum):
    assert main(_argv(dataset, tmp_path / "straight")) == 0

    run = tmp_path / "stopped"
    with monkeypatch.context() as m:
        _signal_at(m, 2, signum)  # checkpoints come every 3 steps: step 2 has none of its own
        assert main(_argv(dataset, run)) == 130
    err = capsys.readouterr().err
    assert f"{signal.Signals(signum).name} at step 2 of 6; checkpoint saved" in err
    assert [p.name for p in list_checkpoints(run)] == ["step-00000002"]
    assert not (run / "final").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers given back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    command = err.split("Resume with: ", 1)[1].strip().split()
    assert command[:2] == ["noiseda", "train"] and "--resume" in command
    assert main(command[1:] + ["--no-progress"]) == 0
    assert f"resuming {run} from step 2 of 6" in capsys.readouterr().out
    for part in ("final/restorer.safetensors", "checkpoints/step-00000006/model.safetensors"):
        a, b = load_file(tmp_path / "straight" / part), load_file(run / part)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    straight = [json.loads(line)["step"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert steps == straight  # no line lost, none twice


def test_a_folder_with_an_earlier_run_needs_resume_or_overwrite(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0}\n{"step": 2}\n')  # stopped before any checkpoint
    assert main(_argv(dataset, run)) == 2
    assert "holds an earlier run's files (no checkpoint): pass --overwrite" in capsys.readouterr().err
    assert main(_argv(dataset, run, "--resume")) == 2
    assert "no run to resume" in capsys.readouterr().err
    assert main(_argv(dataset, run, "--resume", "-c", "tiny-cpu")) == 2
    assert "it stopped before its first checkpoint: start it again with --overwrite" in capsys.readouterr().err
    assert main(_argv(dataset, run, "--overwrite")) == 0
    assert main(_argv(dataset, run)) == 2
    assert "pass --resume to continue it, --overwrite to start over" in capsys.readouterr().err
    first = load_file(run / "final" / "restorer.safetensors")
    (run / "notes.txt").write_text("mine")
    assert main(_argv(dataset, run, "--overwrite")) == 0  # the same run again, from scratch
    again = load_file(run / "final" / "restorer.safetensors")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert (run / "notes.txt").read_text() == "mine"  # only noiseda's own files are deleted
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(0) == 1


def test_resume_hides_tensorboard_events_after_the_checkpoint(dataset, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(_argv(dataset, run, "--set", "train.keep_checkpoints=2")) == 0
    # As after a crash at step 6: its checkpoint and export are gone, its logs are not.
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-00000006")
    shutil.rmtree(run / "final")
    assert main(_argv(dataset, run, "--resume")) == 0
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("loss/total")]
    assert steps == [2, 4, 6]


def test_a_second_signal_stops_at_once_but_not_a_forwarded_copy(monkeypatch):
    from noiseda.training.signals import StopSignals

    clock = [100.0]
    monkeypatch.setattr("noiseda.training.signals.time.monotonic", lambda: clock[0])
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.name == "SIGINT"
        clock[0] += 0.5
        os.kill(os.getpid(), signal.SIGINT)  # a launcher's copy of the same Ctrl-C: ignored
        clock[0] += 5.0
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the user insists
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_overwrite_keeps_the_old_run_when_the_new_config_is_wrong(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_argv(dataset, run)) == 0
    before = load_file(run / "final" / "restorer.safetensors")
    assert main(_argv(dataset, run, "--overwrite", "--set", f"data.clean={tmp_path / 'typo'}")) == 2
    assert "no such file or folder" in capsys.readouterr().err
    after = load_file(run / "final" / "restorer.safetensors")  # a typo never costs the finished run
    assert all(torch.equal(before[k], after[k]) for k in before) and list_checkpoints(run)
