"""Every shipped method at its default recipe (issue 27) trains on tiny data without diverging:
150 steps at the CPU preset's learning rate (1e-3), every logged loss finite, no step skipped,
and the restoring loss (supervised, or the self-supervised one) ending below where it started.
Tiny nets and data: a guard against recipes that blow up, not a measure of quality."""

from __future__ import annotations

import math

import pytest

from noiseda.evaluation.report import read_metrics
from noiseda.methods import METHODS
from noiseda.training.loop import train

from conftest import tiny_config

SHIPPED = [n for n in METHODS.names() if METHODS.get(n).__module__.startswith("noiseda.methods.")]
OWN_SETUP = {"ap-bsn": ["net.name=apbsn", "net.width=8", "net.options={modules: 1}", "data.patch_size=40"],
             "masked": ["net.name=swinir", "net.width=8", "net.options={depths: [1], heads: 2, win: 4}"],
             "c2n": ["method.options.c2n.width=16"], "cycada": ["data.patch_size=32"], "nlcl": ["data.patch_size=32", "method.options.nlcl.rain_blocks=2"]}


@pytest.mark.parametrize("method", SHIPPED)
def test_the_default_recipe_trains_without_diverging(method, dataset, tmp_path):
    extra = OWN_SETUP.get(method, [])
    if method == "oracle":
        extra = ["data.clean=[]", f"data.pairs={dataset['val']}"]
    cfg = tiny_config(dataset, f"method.name={method}", *extra, "train.steps=150", "train.lr=1e-3",
                      "train.log_every=10", "train.val_every=150", "train.checkpoint_every=150",
                      "method.lambda_ramp_steps=null")  # each method's own schedule over the run
    summary = train(cfg, tmp_path / "run", progress=False)
    logged = [r for r in read_metrics(tmp_path / "run") if "loss/total" in r]
    assert summary["nonfinite_skipped"] == 0
    assert all(math.isfinite(v) for r in logged for k, v in r.items() if k.startswith("loss/"))
    key = "loss/sup" if "loss/sup" in logged[-1] else "loss/total"
    values = [r[key] for r in logged if key in r]  # (c2n's restorer learns only in its second stage)
    assert values[-1] < values[0], values
