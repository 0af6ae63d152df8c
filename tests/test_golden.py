"""Numbers that a refactoring must not move (issue 26): for every registered method, a few
seeded steps on tiny data, their logged losses and a fingerprint of every net's final weights,
against tests/golden/methods.json. On a machine like the one that recorded the file (same torch,
same CPU model) the values must be equal bitwise; elsewhere other kernels round differently (and
Adam turns a near-zero gradient's sign into a whole step), so there they must agree to 1e-3.

After a change that is meant to move the numbers (and only then), record them again:
    NOISEDA_UPDATE_GOLDEN=1 pytest tests/test_golden.py
and say in the commit which change moved them and why.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from noiseda.methods import METHODS
from noiseda.training.checkpoint import list_checkpoints
from noiseda.evaluation.report import read_metrics
from noiseda.training.loop import train

from conftest import tiny_config

GOLDEN = Path(__file__).parent / "golden" / "methods.json"
EXTRA = {"oracle": ["data.clean=[]"], "noise-da-ex": [],  # oracle trains on real pairs (added below)
         "ap-bsn": ["net.name=apbsn", "net.width=8", "net.options={modules: 1}", "data.patch_size=40"],
         "cycada": ["data.patch_size=32"], "nlcl": ["data.patch_size=32", "method.options.nlcl.rain_blocks=2"],
         "masked": ["net.name=swinir", "net.width=8", "net.options={depths: [1], heads: 2, win: 4}"]}


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


SIMD = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"}  # what picks the kernels


def this_machine() -> dict:
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), model)
        flags = next((set(ln.split(":", 1)[1].split()) for ln in info if ln.startswith("flags")), set())
    except OSError:
        pass
    return {"torch": torch.__version__, "cpu": model, "simd": sorted(flags & SIMD)}


def _close(a, b, where: str, rel: float) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]", rel)
    elif rel == 0:
        assert a == b, f"{where}: {a!r} now, {b!r} recorded (bitwise on the recording machine)"
    else:
        assert a == pytest.approx(b, rel=rel, abs=1e-6), f"{where}: {a} now, {b} recorded"


# The package's own methods (tests register throwaway ones elsewhere).
SHIPPED = [n for n in METHODS.names() if METHODS.get(n).__module__.startswith("noiseda.methods.")]


@pytest.mark.parametrize("method", SHIPPED)
def test_a_methods_numbers_do_not_move(method, dataset, tmp_path):
    torch.manual_seed(0)
    now = record(method, dataset, tmp_path)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("NOISEDA_UPDATE_GOLDEN"):
        golden[method] = now
        golden["_machine"] = this_machine()
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    assert method in golden, f"no golden numbers for {method}: record them (see this file's docstring)"
    _close(now, golden[method], method, rel=0 if golden.get("_machine") == this_machine() else 1e-3)


def test_every_recorded_method_is_still_registered():
    # a method without golden numbers fails the test above
    recorded = {k for k in json.loads(GOLDEN.read_text()) if not k.startswith("_")}
    assert recorded == set(SHIPPED)
