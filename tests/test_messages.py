"""Messages that must not mislead: a corrupt file is not called dangerous, a refused one never
comes with torch's advice to load it unsafely, an unwritable --out fails before any work, and
a run is never "resumed" to a step it has already passed."""

from __future__ import annotations

import fractions
import os

import torch

from noiseda.training.checkpoint import list_checkpoints
from noiseda.cli import main

from conftest import TINY, data_overrides, write_images


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("noiseda: error:"), err
    assert "weights_only" not in err and "arbitrary code" not in err, err  # never torch's unsafe advice
    return err


def test_random_bytes_are_a_corrupt_file_and_a_pickled_object_is_refused_for_code(tmp_path, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(512))
    assert main(["import-official", str(junk), "--task", "denoise", "--out", str(tmp_path / "a")]) == 2
    err = _one_line(capsys)
    assert "not a readable PyTorch file (corrupt, truncated or another format)" in err and "code" not in err
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "note": fractions.Fraction(1, 3)}, unsafe)
    assert main(["import-official", str(unsafe), "--task", "denoise", "--out", str(tmp_path / "b")]) == 2
    assert "refused: it holds a Python object (fractions.Fraction) whose loading could run code" in _one_line(capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _train(dataset, out, *extra):
    argv = ["train", "--out", str(out), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["method.name=vanilla", *extra]:
        argv += ["--set", s]
    return argv


def test_a_corrupt_optimizer_state_is_one_line_without_unsafe_advice(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run, "train.steps=3")) == 0
    (list_checkpoints(run)[-1] / "optimizer.pt").write_bytes(b"\x80\x02 not a pickle")
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--no-progress", "--set", "train.steps=6"]) == 2
    err = _one_line(capsys)
    assert "optimizer.pt: not a readable PyTorch file" in err and "no checkpoint in" in err


def test_a_resume_to_fewer_steps_than_done_is_refused(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run)) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--no-progress", "--set", "train.steps=3"]) == 2
    assert f"{run} is already at step 6, past train.steps=3" in _one_line(capsys)


def test_evaluate_into_a_folder_it_cannot_write_fails_before_scoring(dataset, tmp_path, capsys):
    from noiseda.training.loop import train

    from conftest import tiny_config

    train(tiny_config(dataset, "method.name=vanilla"), tmp_path / "run", progress=False)
    write_images(tmp_path / "pairs" / "noisy", 2)
    write_images(tmp_path / "pairs" / "clean", 2)
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(tmp_path / "run"), "--pairs", str(tmp_path / "pairs"), "--no-lpips",
                 "--out", "/proc/noiseda-test/eval"]) == 2
    captured = capsys.readouterr()
    assert "--out /proc/noiseda-test/eval: cannot write in /proc" in captured.err
    assert "PSNR" not in captured.out  # nothing was scored
