"""`noiseda restore` on a photographer's folder: metadata kept, nothing skipped or replaced
without a word, earlier outputs never read as inputs, animations refused, Ctrl-C resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from noiseda.cli import main
from noiseda.data.io import read_image

from conftest import tiny_config, write_images


@pytest.fixture
def weights(dataset, tmp_path) -> Path:
    from noiseda.training.loop import train

    train(tiny_config(dataset, "method.name=vanilla"), tmp_path / "run", progress=False)
    return tmp_path / "run" / "final"


def _restore(weights, inputs, output, *extra) -> int:
    return main(["restore", "--weights", str(weights), "--input", *map(str, inputs), "--output", str(output),
                 "--no-progress", *extra])


def _photo(path: Path) -> bytes:
    """A 12x8 JPEG stored sideways (orientation 6) with a camera name and an sRGB profile."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to display
    exif[0x010F] = "TestCam"  # Make
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (8, 12, 3), dtype=np.uint8)).save(path, exif=exif, icc_profile=icc)
    return icc


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_exif_and_the_colour_profile_survive_with_the_orientation_applied(weights, tmp_path, fmt):
    path = tmp_path / "in" / "photo.jpg"
    path.parent.mkdir()
    icc = _photo(path)
    assert _restore(weights, [path], tmp_path / "out", "--format", fmt) == 0
    with Image.open(tmp_path / "out" / f"photo.{fmt}") as im:
        assert im.size == (8, 12)  # upright: the rotation was applied to the pixels...
        exif = im.getexif()
        assert exif[0x0112] == 1  # ...so the file no longer asks for it
        assert exif[0x010F] == "TestCam"
        assert im.info["icc_profile"] == icc


def test_tiff_and_16_bit_png_keep_the_colour_profile(weights, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "in" / "a.tif", icc_profile=icc)
    assert _restore(weights, [tmp_path / "in" / "a.tif"], tmp_path / "out") == 0
    assert _restore(weights, [tmp_path / "in" / "a.tif"], tmp_path / "out16", "--format", "png") == 0
    with Image.open(tmp_path / "out" / "a.tif") as im:
        assert im.info["icc_profile"] == icc
    # a 16-bit source stays 16-bit (pypng) and still carries the profile
    from noiseda.data.io import Picture, write_image

    write_image(tmp_path / "in16" / "b.png", Picture(np.full((16, 16, 3), 0.3, np.float32), bit_depth=16, icc=icc))
    assert _restore(weights, [tmp_path / "in16"], tmp_path / "o16") == 0
    assert read_image(tmp_path / "o16" / "b.png").bit_depth == 16
    with Image.open(tmp_path / "o16" / "b.png") as im:
        assert im.info["icc_profile"] == icc


def test_files_that_are_not_restored_are_listed_with_their_reason(weights, tmp_path, capsys):
    folder = tmp_path / "in"
    write_images(folder, 2)
    (folder / "notes.txt").write_text("shot list")
    Image.new("RGB", (8, 8)).save(folder / "anim.gif")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert _restore(weights, [folder], tmp_path / "out") == 0
    captured = capsys.readouterr()
    line = next(ln for ln in captured.err.splitlines() if ln.startswith("noiseda: skipped 3 file(s)"))
    assert "anim.gif (not a supported image (.gif))" in line and "notes.txt (not a supported image (.txt))" in line
    assert "gone.png (broken link)" in line
    assert "restored 2 image(s)" in captured.out


def test_existing_outputs_are_kept_unless_overwrite(weights, tmp_path, capsys):
    write_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert _restore(weights, [tmp_path / "in"], out) == 0
    (out / "img0.png").write_bytes(b"an earlier result")
    capsys.readouterr()
    assert _restore(weights, [tmp_path / "in"], out) == 0
    assert "restored 0 image(s)" in (text := capsys.readouterr().out) and "kept 2 existing output(s)" in text
    assert (out / "img0.png").read_bytes() == b"an earlier result"
    assert _restore(weights, [tmp_path / "in"], out, "--overwrite") == 0
    assert read_image(out / "img0.png").pixels.shape == (24, 28, 3)
    assert _restore(weights, [tmp_path / "in"], out, "--overwrite", "--skip-existing") == 2


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(weights, tmp_path, capsys):
    folder = tmp_path / "shoot"
    write_images(folder, 2)
    for _ in range(2):  # the second run must not see shoot/restored/*.png as new inputs
        assert _restore(weights, [folder], folder / "restored", "--overwrite") == 0
        assert "restored 2 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (folder / "restored").iterdir()) == ["img0.png", "img1.png"]
    assert _restore(weights, [folder], folder) == 2  # the input folder itself: one line, nothing written
    assert "would overwrite an input image" in capsys.readouterr().err


def test_an_animated_image_is_refused_not_cut_to_its_first_frame(weights, tmp_path, capsys):
    gif = tmp_path / "a.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert _restore(weights, [gif], tmp_path / "out", "--format", "png") == 1
    assert "an animated image (3 frames)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "a.png").exists()


def test_ctrl_c_stops_with_the_way_to_continue_and_a_rerun_finishes(weights, tmp_path):
    folder = tmp_path / "many"
    write_images(folder, 150, size=(256, 256))
    out = tmp_path / "out"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "noiseda", "restore", "--weights", str(weights), "--input", str(folder),
            "--output", str(out), "--no-progress", "--device", "cpu"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # a real Ctrl-C, while images are being written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to restore the rest" in err
    written = [p for p in out.iterdir() if p.suffix == ".png"]
    assert 0 < len(written) < 150
    assert all(read_image(p).pixels.shape == (256, 256, 3) for p in written)  # whole files only
    rerun = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0 and f"kept {len(written)} existing output(s)" in rerun.stdout
    assert len([p for p in out.iterdir() if p.suffix == ".png"]) == 150
