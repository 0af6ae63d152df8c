"""Per-image restorers (no training set): SelfDeblur fits its image and kernel generators to each
blurry image; `noiseda restore` and `noiseda evaluate` run it with --per-image."""

import json

import pytest
import torch
import torch.nn.functional as F

from noiseda.cli import main
from noiseda.evaluation.metrics import psnr
from noiseda.inference.per_image import (VDIP, SelfDeblur, SelfDeblurOptions, VDIPOptions, kernel_centre, to_rgb,
                                        to_ycbcr, vdip_prior)

from conftest import tiny_config, write_images

FAST = ["--per-image-set", "iterations=3", "--per-image-set", "width=4", "--per-image-set", "levels=2",
        "--per-image-set", "kernel_size=3"]


def _blocks() -> torch.Tensor:
    """A sharp image of flat rectangles (what a deep image prior fits first)."""
    sharp = torch.full((1, 3, 32, 32), 0.2)
    sharp[..., 6:18, 5:20] = 0.8
    sharp[..., 20:28, 12:30] = 0.5
    sharp[:, 0, 3:10, 22:29] = 0.9
    return sharp


@pytest.mark.parametrize("restorer", [
    SelfDeblur(SelfDeblurOptions(kernel_size=5, iterations=300, milestones=[300], ssim_after=150, width=16, levels=3)),
    VDIP(VDIPOptions(kernel_size=5, warmup=30, iterations=300, milestones=[300], ssim_after=150, prior_decay_every=75,
                     width=16, levels=3)),
], ids=["selfdeblur", "vdip"])
def test_blind_deconvolution_finds_a_motion_kernel_and_sharpens_the_image(restorer):
    torch.manual_seed(0)
    sharp = _blocks()
    kernel = torch.zeros(1, 1, 5, 5)
    kernel[0, 0, 2, :] = 1 / 5  # horizontal motion
    blurry = F.conv2d(F.pad(sharp, (2, 2, 2, 2), mode="replicate"), kernel.expand(3, 1, 5, 5), groups=3)
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


def test_vdips_prior_pulls_like_the_logarithm_of_the_expected_squared_gradients():
    """Sparsity: each expected squared gradient p is divided by its own detached value, so the
    prior's gradient is that of -sum(log p) / 4 (small gradients are flattened hardest)."""
    torch.manual_seed(0)
    kernel = torch.full((1, 1, 3, 3), 1 / 9)
    mean, std = (0.5 + 0.2 * torch.randn(1, 3, 8, 8)).requires_grad_(), (0.05 + 0.1 * torch.rand(1, 3, 8, 8)).requires_grad_()
    vdip_prior(mean, std, kernel, 10.0).backward()
    got = mean.grad.clone(), std.grad.clone()
    mean.grad = std.grad = None
    var = std.pow(2)
    p = [(mean[..., 1:, :] - mean[..., :-1, :]).pow(2) + var[..., 1:, :] + var[..., :-1, :],
         (mean[..., :, 1:] - mean[..., :, :-1]).pow(2) + var[..., :, 1:] + var[..., :, :-1]]
    log_form = std.log().sum() / mean[0].numel() - sum((q + 1e-6).log().sum() / 4 for q in p) / (7 * 7 * 3)
    log_form.backward()
    assert torch.allclose(got[0], mean.grad, atol=1e-6) and torch.allclose(got[1], std.grad, atol=1e-6)


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
    (["--per-image", "deblurgan"], "unknown; choose from selfdeblur, vdip"),
    (["--per-image", "vdip", "--per-image-set", "input_jitter=0.1"], "vdip has no such option"),
    (["--weights", "w", "--per-image-set", "iterations=5"], "--per-image-set goes with --per-image"),
])
def test_bad_per_image_requests_are_refused_in_one_line(tmp_path, capsys, argv, message):
    write_images(tmp_path / "blurry", 1)
    assert main(["restore", *argv, "--input", str(tmp_path / "blurry"), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "out").exists()


def test_compare_puts_per_image_restorers_beside_a_trained_one(dataset, tmp_path, capsys):
    """--compare NAME=per-image:METHOD: each per-image entry gets the --per-image-set options it
    has (warmup is VDIP's only), and all of them are scored on the same pairs in one table."""
    from noiseda.training.loop import train

    train(tiny_config(dataset, "train.steps=2"), tmp_path / "run", progress=False)
    out = tmp_path / "cmp"
    assert main(["evaluate", "--compare", f"trained={tmp_path / 'run'}", "sd=per-image:selfdeblur",
                 "vd=per-image:vdip", *FAST, "--per-image-set", "warmup=1", "--pairs", str(dataset["val"]),
                 "--out", str(out), "--no-lpips", "--device", "cpu"]) == 0
    rows = (out / "compare.md").read_text().splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == ["input", "trained", "sd", "vd"]
    assert json.loads((out / "vd" / "summary.json").read_text())["meta"]["weights"] == (
        "per-image vdip iterations=3 width=4 levels=2 kernel_size=3 warmup=1")
    assert json.loads((out / "sd" / "summary.json").read_text())["meta"]["weights"] == (
        "per-image selfdeblur iterations=3 width=4 levels=2 kernel_size=3")


@pytest.mark.parametrize("entries, options, message", [
    (["a=per-image:deblurgan", "b=per-image:vdip"], [], "--compare per-image:deblurgan: unknown; choose from"),
    (["a=per-image:selfdeblur"], ["--per-image-set", "warmup=5"], "--per-image-set warmup: none of selfdeblur has"),
    (["a=w", "b=v"], ["--per-image-set", "iterations=5"], "--per-image-set goes with --per-image, or with --compare"),
    (["a=per-image:vdip", "b=per-image:selfdeblur"], ["--per-image-set", "kernel_size=4"], "expected an odd number"),
    (["a=per-image:selfdeblur", "b=missing"], [], "weights not found: missing"),
])
def test_bad_per_image_entries_of_compare_are_refused_in_one_line(tmp_path, capsys, entries, options, message):
    write_images(tmp_path / "pairs" / "input", 1, size=(20, 24))
    write_images(tmp_path / "pairs" / "target", 1, size=(20, 24))
    assert main(["evaluate", "--compare", *entries, *options, "--pairs",
                 str(tmp_path / "pairs"), "--out", str(tmp_path / "o"), "--no-lpips", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "o" / "compare.md").exists()


def test_an_image_too_large_for_per_image_optimisation_fails_by_name_and_the_batch_goes_on(tmp_path, capsys):
    write_images(tmp_path / "blurry", 1, size=(20, 24))
    write_images(tmp_path / "blurry" / "big", 1, size=(40, 48))
    code = main(["restore", "--per-image", "selfdeblur", *FAST, "--per-image-set", "max_pixels=500",
                 "--input", str(tmp_path / "blurry"), "--output", str(tmp_path / "out"), "--device", "cpu", "--no-progress"])
    assert code == 1
    assert "the image is 48x40 pixels, over max_pixels 500: crop or downscale it" in capsys.readouterr().err
    assert (tmp_path / "out" / "img0.png").is_file() and not (tmp_path / "out" / "big").exists()
