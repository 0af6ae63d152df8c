"""AP-BSN (issue 27): the blind spot holds (checked by gradient, also through PD), PD is exactly
invertible, R3 is deterministic, and an exported AP-BSN restores through `noiseda restore` with
its test-time procedure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from noiseda.cli import main
from noiseda.data.store import load_tensor
from noiseda.inference.export import load_restorer
from noiseda.nets import build_net
from noiseda.nets.bsn import APBSN, pd_down, pd_up
from noiseda.training.loop import train

from conftest import tiny_config

SMALL = {"width": 8, "modules": 1}


def _input_gradient(net, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """|d sum_c out[0, c, i, j] / d x|, summed over channels: where output pixel (i, j) looks."""
    x = x.clone().requires_grad_(True)
    net(x)[0, :, i, j].sum().backward()
    return x.grad[0].abs().sum(0)


def test_the_output_at_a_pixel_never_depends_on_that_pixel():
    torch.manual_seed(0)
    bsn = build_net("apbsn", **SMALL).bsn
    x = torch.rand(1, 3, 24, 24)
    for i, j in [(12, 12), (0, 0), (5, 17)]:
        seen = _input_gradient(bsn, x, i, j)
        assert seen[i, j] == 0
        assert seen.sum() > 0 and seen[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].sum() > 0  # its neighbours count


def test_through_pd_a_pixel_sees_only_its_own_sub_image_and_never_itself():
    torch.manual_seed(0)
    net = build_net("apbsn", **SMALL).train()  # training mode: PD at stride 5
    x = torch.rand(1, 3, 40, 40)
    seen = _input_gradient(net, x, 17, 23)
    assert seen[17, 23] == 0 and seen.sum() > 0
    rows, cols = torch.nonzero(seen, as_tuple=True)
    assert bool(((rows - 17) % 5 == 0).all() and ((cols - 23) % 5 == 0).all())  # the same sub-image only


@pytest.mark.parametrize("f, pad", [(2, 0), (2, 2), (5, 2), (3, 1)])
def test_pd_is_exactly_invertible_and_holds_the_sub_images(f, pad):
    x = torch.rand(2, 3, 6 * f, 4 * f)
    mosaic = pd_down(x, f, pad)
    assert mosaic.shape == (2, 3, 6 * f + 2 * f * pad, 4 * f + 2 * f * pad)
    hs, ws = 6 + 2 * pad, 4 + 2 * pad
    for i, j in [(0, 0), (f - 1, 0), (1, f - 1)]:
        sub = mosaic[..., i * hs + pad:(i + 1) * hs - pad, j * ws + pad:(j + 1) * ws - pad]
        torch.testing.assert_close(sub, x[..., i::f, j::f], rtol=0, atol=0)
    torch.testing.assert_close(pd_up(mosaic, f, pad), x, rtol=0, atol=0)


def test_restoring_is_pd_at_the_test_stride_then_a_deterministic_r3():
    torch.manual_seed(0)
    net = build_net("apbsn", **SMALL).eval()
    x = torch.rand(1, 3, 21, 30)  # not multiples of the strides
    with torch.no_grad():
        out, again = net(x), net(x)
        assert out.shape == x.shape and torch.equal(out, again)  # R3's masks are seeded
        plain = APBSN(**SMALL, r3_steps=0)
        plain.load_state_dict(net.state_dict())
        first = plain.eval()(x)
        torch.testing.assert_close(first, net.through_pd(x, 2))
        assert not torch.equal(first, out)  # the refinement changes the result
        torch.testing.assert_close(out, net.refine(x, first))


def test_ap_bsn_needs_its_blind_spot_net(dataset):
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match="config net.name: method ap-bsn trains AP-BSN's blind-spot net"):
        tiny_config(dataset, "method.name=ap-bsn")


def test_an_exported_ap_bsn_restores_with_its_test_time_procedure(dataset, tmp_path):
    cfg = tiny_config(dataset, "method.name=ap-bsn", "net.name=apbsn", "net.width=8",
                      "net.options={modules: 1, r3_steps: 2}", "data.patch_size=40")
    summary = train(cfg, tmp_path / "run", progress=False)
    spec = json.loads((tmp_path / "run" / "final" / "net.json").read_text())
    assert spec["net"] == "apbsn" and spec["kwargs"] == {"width": 8, "modules": 1, "r3_steps": 2}
    assert summary["best"] is not None  # validated like any restorer (with PD at stride 2 and R3)

    out = tmp_path / "restored"
    assert main(["restore", "--weights", str(tmp_path / "run" / "final"), "--input", str(dataset["real"]),
                 "--output", str(out), "--format", "png", "--device", "cpu", "--precision", "no", "--tile", "0"]) == 0
    net, _ = load_restorer(tmp_path / "run" / "final")
    assert isinstance(net, APBSN) and not net.training and net.r3_steps == 2
    first = sorted(dataset["real"].iterdir())[0]
    with torch.no_grad():
        expected = net(load_tensor(first)[None])[0].clamp(0, 1)
    written = np.asarray(Image.open(out / f"{first.stem}.png"), dtype=np.float32) / 255
    assert np.abs(written - expected.permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
