"""Numbers that a refactoring must not move (issue 26): for every registered method, a few
seeded steps on tiny data, their logged losses and a fingerprint of every net's final weights,
against tests/golden/methods.json. On the machine that recorded the file the values are equal
bitwise; the comparison allows 1e-5 relative so that another CPU's rounding does not fail CI.

After a change that is meant to move the numbers (and only then), record them again:
    NOISEDA_UPDATE_GOLDEN=1 pytest tests/test_golden.py
and say in the commit which change moved them and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from noiseda.adapt import METHODS
from noiseda.checkpoint import list_checkpoints
from noiseda.report import read_metrics
from noiseda.train import train

from conftest import tiny_config

GOLDEN = Path(__file__).parent / "golden" / "methods.json"
EXTRA = {"oracle": ["data.clean=[]"], "noise-da-ex": []}  # oracle trains on real pairs (added below)


def fingerprint(run: Path) -> dict:
    """Per net (the first part of each weight's name): count, sum and sum of squares, float64."""
    weights = load_file(str(list_checkpoints(run)[-1] / "model.safetensors"))
    nets: dict[str, list[float]] = {}
    for name, w in sorted(weights.items()):
        acc = nets.setdefault(name.split(".")[0], [0, 0.0, 0.0])
        w = w.double()
        acc[0] += w.numel()
        acc[1] += float(w.sum())
        acc[2] += float((w * w).sum())
    return nets


def record(method: str, dataset, tmp_path) -> dict:
    extra = [f"method.name={method}", *EXTRA.get(method, [])]
    if method == "oracle":
        extra.append(f"data.pairs={dataset['val']}")
    run = tmp_path / method
    train(tiny_config(dataset, *extra), run, progress=False)
    losses = {str(r["step"]): {k: v for k, v in r.items() if k.startswith("loss/")}
              for r in read_metrics(run) if any(k.startswith("loss/") for k in r)}
    return {"losses": losses, "weights": fingerprint(run)}


def _close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7), f"{where}: {a} now, {b} recorded"


@pytest.mark.parametrize("method", METHODS.names())
def test_a_methods_numbers_do_not_move(method, dataset, tmp_path):
    torch.manual_seed(0)
    now = record(method, dataset, tmp_path)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("NOISEDA_UPDATE_GOLDEN"):
        golden[method] = now
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    assert method in golden, f"no golden numbers for {method}: record them (see this file's docstring)"
    _close(now, golden[method], method)


def test_every_recorded_method_is_still_registered():
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(METHODS.names())
