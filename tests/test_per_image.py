"""Per-image restorers (no training set): SelfDeblur fits its image and kernel generators to each
blurry image; `noiseda restore` and `noiseda evaluate` run it with --per-image."""

import pytest
import torch
import torch.nn.functional as F

from noiseda.cli import main
from noiseda.evaluation.metrics import psnr
from noiseda.inference.per_image import SelfDeblur, SelfDeblurOptions, kernel_centre, to_rgb, to_ycbcr

from conftest import write_images

FAST = ["--per-image-set", "iterations=3", "--per-image-set", "width=4", "--per-image-set", "levels=2",
        "--per-image-set", "kernel_size=3"]


def _blocks() -> torch.Tensor:
    """A sharp image of flat rectangles (what a deep image prior fits first)."""
    sharp = torch.full((1, 3, 32, 32), 0.2)
    sharp[..., 6:18, 5:20] = 0.8
    sharp[..., 20:28, 12:30] = 0.5
    sharp[:, 0, 3:10, 22:29] = 0.9
    return sharp


def test_selfdeblur_finds_a_motion_kernel_and_sharpens_the_image():
    torch.manual_seed(0)
    sharp = _blocks()
    kernel = torch.zeros(1, 1, 5, 5)
    kernel[0, 0, 2, :] = 1 / 5  # horizontal motion
    blurry = F.conv2d(F.pad(sharp, (2, 2, 2, 2), mode="replicate"), kernel.expand(3, 1, 5, 5), groups=3)
    options = SelfDeblurOptions(kernel_size=5, iterations=300, milestones=[300], ssim_after=150, width=16, levels=3)
    restorer = SelfDeblur(options)
    restored = restorer(blurry)
    assert restored.shape == blurry.shape
    found = restorer.last_kernel
    assert found.min() >= 0 and found.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert found.sum(1).max() > 0.6  # most of its mass on one row: a horizontal blur
    assert found.sum(0).max() < 0.3  # and spread along it
    assert restorer.losses[-1] < 0.05 * restorer.losses[0]  # the reblurred estimate fits the input
    gain = psnr(restored[0].clamp(0, 1), sharp[0]) - psnr(blurry[0], sharp[0])
    assert gain > 1.5, f"{gain:.2f} dB over the blurry input"


def test_the_output_is_cropped_where_the_kernel_has_its_mass():
    k = torch.zeros(5, 5)
    k[3, 1] = 1.0
    assert kernel_centre(k) == (3, 1)
    assert kernel_centre(torch.full((5, 5), 1 / 25)) == (2, 2)


def test_colour_is_split_into_luma_and_chroma_and_back_exactly():
    x = torch.rand(2, 3, 5, 6)
    assert torch.allclose(to_rgb(to_ycbcr(x)), x, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(to_ycbcr(grey)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6)  # no chroma in grey


def test_restore_and_evaluate_run_selfdeblur_per_image(tmp_path, capsys):
    write_images(tmp_path / "blurry", 2, size=(20, 24))
    assert main(["restore", "--per-image", "selfdeblur", *FAST, "--input", str(tmp_path / "blurry"),
                 "--output", str(tmp_path / "out"), "--device", "cpu", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]
    write_images(tmp_path / "pairs" / "input", 1, size=(20, 24))
    write_images(tmp_path / "pairs" / "target", 1, size=(20, 24))
    capsys.readouterr()
    assert main(["evaluate", "--per-image", "selfdeblur", *FAST, "--pairs", str(tmp_path / "pairs"),
                 "--device", "cpu", "--no-lpips", "--out", str(tmp_path / "scores")]) == 0
    assert "| pairs | 1 |" in capsys.readouterr().out
    assert (tmp_path / "scores" / "summary.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--per-image", "selfdeblur", "--per-image-set", "kernel=5"], "did you mean 'kernel_size'"),
    (["--per-image", "selfdeblur", "--per-image-set", "kernel_size=4"], "expected an odd number"),
    (["--per-image", "selfdeblur", "--per-image-set", "iterations"], "expected KEY=VALUE"),
    (["--per-image", "deblurgan"], "unknown; choose from selfdeblur"),
    (["--weights", "w", "--per-image-set", "iterations=5"], "--per-image-set goes with --per-image"),
])
def test_bad_per_image_requests_are_refused_in_one_line(tmp_path, capsys, argv, message):
    write_images(tmp_path / "blurry", 1)
    assert main(["restore", *argv, "--input", str(tmp_path / "blurry"), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "out").exists()
