"""`noiseda ablate`: each Table 4 variant configures what it claims, and the command runs end to end."""

from types import SimpleNamespace

import pytest

from noiseda.experiments.ablate import ABLATIONS, PAPER_TABLE4, ablation_sweep
from noiseda.cli import main
from noiseda.errors import NoisedaError
from noiseda.experiments.sweep import run_config

from conftest import TINY, data_overrides


def test_every_variant_sets_what_its_name_says(dataset):
    sweep = ablation_sweep(None, TINY + data_overrides(dataset) + ["method.name=vanilla"],
                           {"val": str(dataset["val"])}, [0])
    assert list(sweep.variants) == list(ABLATIONS) and sweep.reference == "full"
    methods = {v: run_config(sweep, v, 0).method for v in sweep.variants}
    assert methods["vanilla"].name == "vanilla"
    assert all(methods[v].name == "noise-da" for v in ABLATIONS if v != "vanilla")  # the base's method.name is dropped
    m = {v: SimpleNamespace(**methods[v].options["noise-da"]) for v in ABLATIONS if v != "vanilla"}
    full = m["full"]
    assert (full.channel_shuffle, full.residual_swap, full.condition, full.t_range) == (True, True, "both", [1, 999])
    assert (m["no-rs"].channel_shuffle, m["no-rs"].residual_swap) == (True, False)
    assert (m["no-cs"].channel_shuffle, m["no-cs"].residual_swap) == (False, True)
    assert (m["no-cs-no-rs"].channel_shuffle, m["no-cs-no-rs"].residual_swap) == (False, False)
    assert m["t-1-100"].t_range == [1, 100] and m["t-900-999"].t_range == [900, 999]
    assert not m["t-1-100"].channel_shuffle and not m["t-1-100"].residual_swap  # as in the paper's rows
    assert m["only-synthetic"].condition == "synthetic" and m["only-real"].condition == "real"
    assert set(PAPER_TABLE4) == set(ABLATIONS)


def test_bad_choices_are_refused(dataset):
    with pytest.raises(NoisedaError, match="unknown ablation 'no-cs-rs'"):
        ablation_sweep(None, [], {"val": "x"}, [0], ["no-cs-rs"])
    with pytest.raises(NoisedaError, match="at least one --test-set"):
        ablation_sweep(None, [], {}, [0])
    assert list(ablation_sweep(None, [], {"val": "x"}, [0], ["only-real"]).variants) == ["full", "only-real"]


def test_ablate_runs_end_to_end(dataset, tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = ["ablate", "--out", str(out), "--test-set", f"val={dataset['val']}", "--seeds", "0", "1",
            "--variants", "only-real", "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["train.steps=2", "train.checkpoint_every=2"]:
        argv += ["--set", s]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| full | 2 |" in printed and "| only-real | 2 |" in printed and "32.60 / 0.8831" in printed
    assert (out / "ablation.md").is_file() and (out / "curves.png").is_file()
    for variant in ("full", "only-real"):
        for seed in (0, 1):
            assert (out / "runs" / variant / f"seed-{seed}" / "scores.json").is_file()
