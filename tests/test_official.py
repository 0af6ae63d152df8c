"""import-official: the authors' Network state dict -> our restorer; unsafe pickles refused."""

import json
import pathlib
import re

import pytest
import torch

from noiseda.inference.export import load_restorer
from noiseda.cli import main
from noiseda.nets import build_net


def _their_keys(ours: dict) -> dict:
    """Our unet state dict under the authors' names, plus a diffusion net to be dropped."""
    theirs = {}
    for k, v in ours.items():
        k = re.sub(r"^(down_path\.\d+)\.", r"\1.block.", k)
        k = re.sub(r"^(up_path\.\d+\.conv_block)\.", r"\1.block.", k)
        theirs["RestorationNet." + k] = v.clone()
    theirs["denoise_fn.init_conv.weight"] = torch.zeros(4, 9, 3, 3)
    return theirs


@pytest.mark.parametrize("task, value_range", [("denoise", [0.0, 1.0]), ("derain", [-1.0, 1.0])])
@pytest.mark.parametrize("wrap", [lambda s: s, lambda s: {"state_dict": {"module." + k: v for k, v in s.items()}}])
def test_import_gives_the_same_restorer(tmp_path, task, value_range, wrap):
    torch.manual_seed(0)
    net = build_net("unet-t").eval()
    ckpt = tmp_path / "model_ema.pth"
    torch.save(wrap(_their_keys(net.state_dict())), ckpt)
    assert main(["import-official", str(ckpt), "--task", task, "--out", str(tmp_path / "imported")]) == 0
    spec = json.loads((tmp_path / "imported" / "net.json").read_text())
    assert spec["net"] == "unet-t" and spec["value_range"] == value_range and spec["task"] == task
    loaded, _ = load_restorer(tmp_path / "imported")
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pth"
    torch.save({"RestorationNet.last.weight": _RunsCode(marker)}, evil)
    assert main(["import-official", str(evil), "--task", "denoise", "--out", str(tmp_path / "o")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("payload, message", [
    ({"model": {"conv.weight": torch.zeros(1)}}, "no RestorationNet"),
    ({"RestorationNet.down_path.0.block.0.weight": torch.zeros(32, 3, 3, 3)}, "do not fit"),
])
def test_wrong_checkpoints_give_one_line_errors(tmp_path, capsys, payload, message):
    torch.save(payload, tmp_path / "c.pth")
    assert main(["import-official", str(tmp_path / "c.pth"), "--task", "deblur", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_checkpoint_whose_optimizer_file_would_run_code_is_refused(dataset, tmp_path):
    from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
    from noiseda.errors import NoisedaError
    from noiseda.training.loop import train

    from conftest import tiny_config

    run = tmp_path / "r"
    train(tiny_config(dataset, "train.steps=3"), run, progress=False)
    last = list_checkpoints(run)[-1]
    marker = tmp_path / "code-ran"
    torch.save({"state": _RunsCode(marker)}, last / "optimizer.pt")
    with pytest.raises(NoisedaError, match="cannot load checkpoint"):
        load_checkpoint(last)
    assert not marker.exists()
