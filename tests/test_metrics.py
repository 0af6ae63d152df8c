import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from noiseda.evaluation.metrics import psnr, rgb_to_y, ssim


def _pair(seed=0, shape=(3, 40, 50)):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(shape, generator=g, dtype=torch.float64)
    return (clean + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1), clean


def test_psnr_and_ssim_match_scikit_image():
    x, y = _pair()
    xn, yn = x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy()
    assert psnr(x, y) == pytest.approx(peak_signal_noise_ratio(yn, xn, data_range=1.0), abs=1e-3)
    ref = structural_similarity(yn, xn, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ssim(x, y) == pytest.approx(ref, abs=1e-4)


def test_y_channel_is_bt601_as_matlab():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_y(white).item() == pytest.approx(235 / 255, abs=1e-4)
    assert rgb_to_y(black).item() == pytest.approx(16 / 255)
    x, y = _pair(1)
    assert psnr(x, y, y_channel=True) != pytest.approx(psnr(x, y))


def test_identical_images():
    _, y = _pair()
    assert psnr(y, y) == float("inf") and ssim(y, y) == pytest.approx(1.0)


def test_y_channel_with_border_crop_matches_scikit_image():
    from skimage.color import rgb2ycbcr  # MATLAB's rgb2ycbcr: Y in [16, 235]

    x, y = _pair(2)
    xy, yy = (rgb2ycbcr(t.permute(1, 2, 0).numpy())[..., 0] / 255 for t in (x, y))
    c = 4
    xy, yy = xy[c:-c, c:-c], yy[c:-c, c:-c]
    assert psnr(x, y, y_channel=True, crop=c) == pytest.approx(peak_signal_noise_ratio(yy, xy, data_range=1.0),
                                                              abs=1e-3)
    ref = structural_similarity(yy, xy, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(x, y, y_channel=True, crop=c) == pytest.approx(ref, abs=1e-4)
