"""Every registered degradation: deterministic given its generator, shape-preserving, in range."""

import pytest
import torch

from noiseda.degrade import DEGRADATIONS
from noiseda.degrade.blur import convolve, defocus_kernel, linear_motion_kernel, shake_kernel

IMG = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


@pytest.mark.parametrize("name", DEGRADATIONS.names())
def test_deterministic_and_shape_preserving(name):
    fn = DEGRADATIONS.get(name)
    a = fn(IMG, torch.Generator().manual_seed(1))
    b = fn(IMG, torch.Generator().manual_seed(1))
    c = fn(IMG, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and a.shape == IMG.shape and a.dtype == IMG.dtype
    assert not torch.equal(a, c) and not torch.equal(a, IMG)


@pytest.mark.parametrize("name", ["rain-streaks", "rain-real", "blur-real", "camera-noise"])
def test_real_like_outputs_stay_in_range(name):
    out = DEGRADATIONS.get(name)(IMG, torch.Generator().manual_seed(3))
    assert out.min() >= 0 and out.max() <= 1


def test_rain_only_brightens():
    out = DEGRADATIONS.get("rain-streaks")(IMG, torch.Generator().manual_seed(4))
    assert (out >= IMG - 1e-6).all() and (out > IMG + 0.05).float().mean() > 0.001


def test_kernels_are_normalised_and_shaped():
    for k in (linear_motion_kernel(9, 30, 15), shake_kernel(torch.Generator().manual_seed(0)), defocus_kernel(3, 9)):
        assert k.sum().item() == pytest.approx(1.0, abs=1e-5) and (k >= 0).all()
    horizontal = linear_motion_kernel(9, 0, 15)
    assert horizontal[7].sum() > 0.9  # a horizontal path stays on the middle row
    disk = defocus_kernel(3, 9)
    assert disk[4, 4] > 0 and disk[0, 0] == 0


def test_blur_keeps_flat_images_flat():
    flat = torch.full((3, 20, 20), 0.4)
    out = convolve(flat, shake_kernel(torch.Generator().manual_seed(5)))
    torch.testing.assert_close(out, flat)


def test_compose_applies_steps_in_order_with_probabilities():
    from noiseda.degrade import compose

    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    plain = DEGRADATIONS.get("awgn")(IMG, g(), sigma_range=(10, 10))
    torch.testing.assert_close(compose("awgn", sigma_range=(10, 10))(IMG, g()), plain)
    assert torch.equal(compose("shake-blur@0")(IMG, g()), IMG)
    both = compose("defocus-blur+awgn", sigma_range=(0, 0))(IMG, g())
    torch.testing.assert_close(both, DEGRADATIONS.get("defocus-blur")(IMG, g()))
    hits = sum(not torch.equal(compose("shake-blur@0.5")(IMG, torch.Generator().manual_seed(s)), IMG)
               for s in range(40))
    assert 8 < hits < 32


@pytest.mark.parametrize("spec, message", [("awgn@2", "not in"), ("awgn@x", "bad probability"), ("rain-streak", "did you mean")])
def test_compose_rejects_bad_specs(spec, message):
    from noiseda.degrade import compose
    from noiseda.errors import NoisedaError

    with pytest.raises(NoisedaError, match=message):
        compose(spec)


BATCH = IMG.expand(6, -1, -1, -1).clone()  # six copies of one image


@pytest.mark.parametrize("name", DEGRADATIONS.names())
def test_batches_draw_parameters_per_sample_and_keep_dtype(name):
    fn = DEGRADATIONS.get(name)
    out = fn(BATCH, torch.Generator().manual_seed(1))
    again = fn(BATCH, torch.Generator().manual_seed(1))
    assert out.shape == BATCH.shape and torch.equal(out, again)
    assert not all(torch.equal(out[0], o) for o in out[1:])  # same input, different degradations
    assert fn(BATCH.double(), torch.Generator().manual_seed(1)).dtype == torch.float64


def test_compose_draws_one_coin_per_sample():
    from noiseda.degrade import compose

    batch = IMG.expand(40, -1, -1, -1).clone()
    out = compose("defocus-blur@0.5")(batch, torch.Generator().manual_seed(0))
    unchanged = sum(torch.equal(o, IMG) for o in out)
    assert 8 < unchanged < 32
