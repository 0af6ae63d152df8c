"""Files noiseda writes get the permissions the umask allows (0644 under 022), like any tool's:
colleagues sharing a machine or a model folder can read them. Atomic writes go through 0600
temporary files (mkstemp, safetensors); their mode must not leak into the results."""

import os
import stat

from noiseda.cli import main
from noiseda.data.io import write_atomic

from conftest import TINY, data_overrides


def _modes(*folders):
    return {p: stat.S_IMODE(p.stat().st_mode) for f in folders for p in f.rglob("*") if p.is_file()}


def test_train_restore_evaluate_files_are_0644_under_umask_022(dataset, tmp_path):
    run, restored, scores = tmp_path / "run", tmp_path / "restored", tmp_path / "scores"
    old = os.umask(0o022)
    try:
        argv = ["train", "--out", str(run), "--no-progress"]
        for s in TINY + data_overrides(dataset):
            argv += ["--set", s]
        assert main(argv) == 0
        assert main(["restore", "--weights", str(run), "--input", str(dataset["val"] / "noisy"),
                     "--output", str(restored), "--device", "cpu", "--no-progress"]) == 0
        assert main(["evaluate", "--weights", str(run), "--pairs", str(dataset["val"]), "--out", str(scores),
                     "--device", "cpu", "--no-lpips"]) == 0
    finally:
        os.umask(old)
    modes = _modes(run, restored, scores)
    names = {str(p.relative_to(tmp_path)) for p in modes}
    for expected in ("restored/img0.png", "run/final/restorer.safetensors", "run/checkpoints/step-00000006/model.safetensors",
                     "run/checkpoints/step-00000006/optimizer.pt", "scores/val.csv", "scores/summary.json"):
        assert expected in names, expected
    wrong = {str(p): oct(m) for p, m in modes.items() if m != 0o644}
    assert not wrong


def test_a_stricter_umask_is_kept(tmp_path):
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
