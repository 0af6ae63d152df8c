"""An honest resume: a --set that only steers the rest of the run is applied (the optimizer's
learning rate too) and named in the log; one that would change what the checkpoint means is one
line; data paths work from any working directory; a corrupt newest checkpoint falls back."""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import load_file

from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
from noiseda.cli import main

from conftest import TINY, data_overrides


def _sets(items) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def _train(dataset, out, *extra, method="vanilla") -> list[str]:
    return ["train", "--out", str(out), "--no-progress",
            *_sets(TINY + data_overrides(dataset) + [f"method.name={method}", "train.steps=3"]), *extra]


def _resume(out, *sets: str) -> list[str]:
    return ["train", "--out", str(out), "--resume", "--no-progress", *_sets(sets)]


def _restorer(run) -> dict:
    return load_file(str(list_checkpoints(run)[-1] / "model.safetensors"))


def test_a_changed_learning_rate_reaches_the_optimizer_and_the_log(dataset, tmp_path, capsys):
    same, faster = tmp_path / "same", tmp_path / "faster"
    for run in (same, faster):
        assert main(_train(dataset, run)) == 0
    capsys.readouterr()
    assert main(_resume(same, "train.steps=6")) == 0
    assert "resume: train.steps changed from 3 to 6" in capsys.readouterr().out
    assert main(_resume(faster, "train.steps=6", "train.lr=0.01")) == 0
    out = capsys.readouterr().out
    assert "resume: train.lr changed from 0.0001 to 0.01" in out and "train.steps changed from 3 to 6" in out
    assert load_checkpoint(list_checkpoints(faster)[-1])["optimizer"]["param_groups"][0]["lr"] == 0.01
    assert yaml.safe_load((faster / "config.yaml").read_text())["train"]["lr"] == 0.01
    a, b = _restorer(same), _restorer(faster)
    assert any(not torch.equal(a[k], b[k]) for k in a)  # it trained at the new rate


def test_a_diffusion_learning_rate_changes_its_own_group(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run, "--set", "train.diffusion_lr=0.001", method="noise-da")) == 0
    assert main(_resume(run, "train.steps=6", "train.diffusion_lr=0.002")) == 0
    groups = load_checkpoint(list_checkpoints(run)[-1])["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [0.0001, 0.002]
    capsys.readouterr()
    assert main(_resume(run, "train.steps=9", "train.diffusion_lr=0")) == 2  # would merge the two groups
    assert "cannot change train.diffusion_lr from 0.002 to 0" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ("net.width=8", "--resume cannot change net.width from 4 to 8: the checkpoint was trained with the old value"),
    ("method.name=noise-da", "--resume cannot change method.name from 'vanilla' to 'noise-da'"),
    ("data.patch_size=24", "--resume cannot change data.patch_size from 16 to 24"),
])
def test_a_change_that_makes_the_checkpoint_mean_something_else_is_one_line(dataset, tmp_path, capsys, change,
                                                                             message):
    run = tmp_path / "run"
    assert main(_train(dataset, run)) == 0
    before = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(_resume(run, change, "train.steps=6")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "start a new run" in err
    assert (run / "config.yaml").read_text() == before  # nothing rewritten
    assert [p.name for p in list_checkpoints(run)] == ["step-00000003"]


def test_a_run_with_relative_data_paths_resumes_from_another_folder(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(dataset["root"])
    run = tmp_path / "run"
    relative = ["data.clean=clean", "data.real=real", "data.val_pairs=val"]
    assert main(_train(dataset, run, *_sets(relative))) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert saved["clean"] == [str(dataset["clean"])] and saved["val_pairs"] == str(dataset["val"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(_resume(run, "train.steps=6")) == 0
    assert [p.name for p in list_checkpoints(run)][-1] == "step-00000006"


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run, "--set", "train.steps=6")) == 0
    newest = list_checkpoints(run)[-1] / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    capsys.readouterr()
    assert main(_resume(run, "train.steps=9")) == 0
    out = capsys.readouterr().out
    assert "note: cannot load checkpoint" in out and "step-00000006" in out and "using the checkpoint before it" in out
    assert f"resuming {run} from step 3 of 9" in out
    assert [p.name for p in list_checkpoints(run)][-1] == "step-00000009"
