"""Adding a method is one file (issue 26): a throwaway method written as one module into a
folder of the methods package is found, trains, resumes exactly, exports only its restorer,
and appears in compare-methods' table, with no other edit anywhere."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import yaml
from safetensors.torch import load_file

import noiseda.methods
from noiseda.cli import main
from noiseda.methods import METHODS
from noiseda.training.loop import train

from conftest import TINY, data_overrides, tiny_config

THROWAWAY = textwrap.dedent('''
    """A throwaway method: supervised, plus lambda * weight * a critic's score of the restored
    real images (a training-only net)."""
    from dataclasses import dataclass

    import torch
    from torch import nn

    from noiseda.methods.base import Method, TableRow, register_method


    @register_method("throwaway")
    class Throwaway(Method):
        streams = ("synthetic", "real")
        lambda_role = "weight of the critic's score"
        table = TableRow(space="test space", trained_on="a test's data")

        @dataclass
        class Options:
            weight: float = 1.0

        def __init__(self, cfg, restorer):
            super().__init__(cfg, restorer)
            self.critic = nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, batch, lam):
            sup = self.supervised(self.restorer(batch.synthetic), batch.clean)
            score = self.critic(self.restorer(batch.real)).pow(2).mean()
            return {"total": sup + lam * self.options.weight * score, "sup": sup, "critic": score.detach()}
''')


@pytest.fixture
def throwaway(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.mktemp("more_methods")
    (folder / "throwaway.py").write_text(THROWAWAY)
    monkeypatch.setattr(noiseda.methods, "__path__", [*noiseda.methods.__path__, str(folder)])
    noiseda.methods.discover()
    yield "throwaway"
    METHODS.remove("throwaway")
    sys.modules.pop("noiseda.methods.throwaway", None)


def test_a_method_in_one_file_trains_resumes_and_exports_only_its_restorer(throwaway, dataset, tmp_path):
    cfg = tiny_config(dataset, f"method.name={throwaway}", "method.options.throwaway.weight=0.5")
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    train(cfg, whole, progress=False)
    train(tiny_config(dataset, f"method.name={throwaway}", "method.options.throwaway.weight=0.5", "train.steps=3"),
          halves, progress=False)
    train(cfg, halves, resume=True, progress=False)

    saved = yaml.safe_load((whole / "config.yaml").read_text())["method"]
    assert saved["options"] == {"throwaway": {"weight": 0.5}}  # its options, and no other method's
    a = load_file(whole / "checkpoints/step-00000006/model.safetensors")
    b = load_file(halves / "checkpoints/step-00000006/model.safetensors")
    assert any(k.startswith("critic.") for k in a)  # the training-only net trained and was saved
    assert all(torch.equal(a[k], b[k]) for k in a)  # the resumed run is the one that did not stop
    exported = load_file(whole / "final" / "restorer.safetensors")
    assert exported and not any(k.startswith("critic") for k in exported)
    assert set(exported) == {k.removeprefix("restorer.") for k in a if k.startswith("restorer.")}
    # its options are typed: a wrong key is refused with the method's own fields
    with pytest.raises(Exception, match="method.options.throwaway.weigth.*'weight'"):
        tiny_config(dataset, f"method.name={throwaway}", "method.options.throwaway.weigth=2")


def test_a_method_in_one_file_appears_in_the_compare_methods_table(throwaway, dataset, tmp_path, capsys):
    out = tmp_path / "methods"
    argv = ["compare-methods", "--out", str(out), "--test-set", f"val={dataset['val']}", "--seeds", "0",
            "--methods", throwaway, "--no-progress"]
    for s in TINY + data_overrides(dataset) + ["train.steps=2", "train.checkpoint_every=2"]:
        argv += ["--set", s]
    assert main(argv) == 0
    table = (out / "methods.md").read_text()
    capsys.readouterr()
    assert main(["methods", throwaway]) == 0  # and `noiseda methods` describes it from its declarations
    described = capsys.readouterr().out
    assert "lambda: weight of the critic's score" in described and "method.options.throwaway.KEY): weight=1" in described
    row = next(line for line in table.splitlines() if line.startswith(f"| {throwaway} |"))
    assert "test space" in row and "a test's data" in row
    assert "| vanilla |" in table  # the reference of every interval
