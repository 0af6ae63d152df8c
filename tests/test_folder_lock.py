"""One noiseda process per run folder: a second train, a resume of a run still going, or a
second sweep gets one line naming the holder's PID; a lock left by a killed process is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from noiseda.cli import main
from noiseda.errors import NoisedaError
from noiseda.training.folder_lock import RUN_LOCK, folder_lock

from conftest import TINY, data_overrides

HOLDER = """
import sys
from noiseda.training.folder_lock import folder_lock
with folder_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


class Holder:
    """Another real process that holds `folder`'s lock until released (or killed)."""

    def __init__(self, folder: Path, name: str = RUN_LOCK):
        src = str(Path(__file__).resolve().parents[1] / "src")
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc.stdin.close()


def _train(dataset, out: Path, *extra: str) -> list[str]:
    argv = ["train", "--out", str(out), "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["method.name=vanilla"]:
        argv += ["--set", s]
    return argv + list(extra)  # after the defaults: a --set here wins


def test_a_second_train_into_a_held_folder_is_one_line_naming_the_holder(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    holder = Holder(run)
    try:
        assert main(_train(dataset, run)) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"noiseda: error: {run} is in use by another noiseda process (PID {holder.proc.pid}); "
                       "wait for it to finish, or choose another --out")
        assert sorted(p.name for p in run.iterdir()) == [RUN_LOCK]  # nothing of the second run written
    finally:
        holder.release()
    assert main(_train(dataset, run)) == 0  # released: the folder is free again


def test_a_resume_while_the_run_is_still_going_is_refused(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run)) == 0
    before = (run / "metrics.jsonl").read_text()
    holder = Holder(run)
    try:
        assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 2
        assert f"(PID {holder.proc.pid})" in capsys.readouterr().err
    finally:
        holder.release()
    assert (run / "metrics.jsonl").read_text() == before  # no duplicated log lines


def test_a_lock_left_by_a_killed_process_is_taken_over(dataset, tmp_path):
    run = tmp_path / "run"
    holder = Holder(run)
    holder.kill()  # its lock file stays, with its PID, but the kernel dropped the lock
    assert str(holder.proc.pid) in (run / RUN_LOCK).read_text()
    assert main(_train(dataset, run)) == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 6
    assert (run / RUN_LOCK).read_text().split()[0] == str(os.getpid())


def test_overwrite_keeps_the_lock_and_a_refused_run_leaves_no_folder(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(dataset, run)) == 0
    assert main(_train(dataset, run, "--overwrite")) == 0
    assert (run / RUN_LOCK).is_file() and (run / "final").is_dir()
    fresh = tmp_path / "fresh"
    assert main(_train(dataset, fresh, "--set", f"data.clean={tmp_path / 'missing'}")) == 2
    assert "missing" in capsys.readouterr().err
    assert not fresh.exists()  # refused after the lock was taken: the folder it made is gone again


def test_the_lock_is_released_on_error_and_an_unreadable_record_still_reads_as_one_line(tmp_path):
    folder = tmp_path / "f"
    with pytest.raises(RuntimeError):
        with folder_lock(folder):
            raise RuntimeError("boom")
    assert not folder.exists()  # created here and left with nothing but the lock: removed
    folder.mkdir()
    with folder_lock(folder):
        (folder / "kept.txt").write_text("x")
        (folder / RUN_LOCK).write_text("")
        # a second handle, even in this process, conflicts as another process would
        with pytest.raises(NoisedaError, match="in use by another process; wait"):
            with folder_lock(folder):
                pass
    assert (folder / "kept.txt").is_file()
