"""Tiled restoration equals whole-image restoration where the overlap covers the receptive field."""

import pytest
import torch
from torch import nn

from noiseda.inference.tiling import restore_tensor


class SmallConv(nn.Module):
    """Receptive field 5x5 (radius 2, two 3x3 convs): tiles with overlap >= 8 must match exactly."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@pytest.mark.parametrize("hw", [(1, 1), (7, 101), (7, 1001), (37, 53), (64, 64)])
@pytest.mark.parametrize("tile", [16, 24, 200])
def test_tiled_equals_whole(hw, tile):
    net = SmallConv().eval()
    img = torch.rand(3, *hw)
    whole = restore_tensor(net, img, tile=None)
    tiled = restore_tensor(net, img, tile=tile, overlap=8, batch=3)
    assert tiled.shape == img.shape
    torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)


def test_value_range_is_applied():
    class Echo(nn.Module):
        def forward(self, x):
            self.seen = x
            return x

    net = Echo()
    img = torch.rand(3, 5, 5)
    out = restore_tensor(net, img, value_range=(-1.0, 1.0), tile=None)
    assert net.seen.min() < 0 <= img.min()
    torch.testing.assert_close(out, img)


def test_auto_tile_on_cpu_and_restore_safely_accepts_it():
    from noiseda.inference.tiling import choose_tile, restore_safely

    net = SmallConv().eval()
    assert choose_tile(net, "cpu") == 512
    img = torch.rand(3, 40, 30)
    torch.testing.assert_close(restore_safely(net, img, (0.0, 1.0), "auto", 32, "cpu"),
                               restore_tensor(net, img, tile=None), atol=1e-5, rtol=0)


def test_tile_argument_is_checked(capsys):
    from noiseda.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["restore", "--weights", "w", "--input", "x", "--output", "o", "--tile", "10"])
    assert exc.value.code == 2 and "below 16 pixels" in capsys.readouterr().err
