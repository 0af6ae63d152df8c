"""`noiseda prepare`: patches cover the image, pairs stay aligned, flat patches filtered, resumable."""

import json

import numpy as np

from noiseda.cli import main
from noiseda.data.io import read_image

from conftest import write_images


def test_single_images_to_patches_and_resume(tmp_path, capsys):
    write_images(tmp_path / "big", 2, size=(40, 50))
    args = ["prepare", "--input", str(tmp_path / "big"), "--out", str(tmp_path / "p"), "--size", "16",
            "--stride", "12", "--no-progress"]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    # rows at 0, 12, 24 (last flush at 24) and columns 0, 12, 24, 34: 3 x 4 per image
    assert manifest["patches"] == 24 and len(list((tmp_path / "p" / "patches").iterdir())) == 24
    assert all(read_image(p).pixels.shape == (16, 16, 3) for p in (tmp_path / "p" / "patches").iterdir())
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "p" / "patches").iterdir()}
    assert main(args) == 0  # resumed: nothing redone
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "p" / "patches").iterdir()} == before


def test_pairs_stay_aligned_and_flat_patches_are_skipped(tmp_path):
    write_images(tmp_path / "d" / "noisy", 1, size=(32, 32), noise=0.1)
    clean = write_images(tmp_path / "d" / "clean", 1, size=(32, 32))
    arr = read_image(clean[0]).pixels.copy()
    arr[:16, :16] = 0.5  # one flat quadrant
    from noiseda.data.io import Picture, write_image

    write_image(clean[0], Picture(arr))
    assert main(["prepare", "--pairs", str(tmp_path / "d"), "--out", str(tmp_path / "p"), "--size", "16",
                 "--min-std", "0.01", "--workers", "2", "--no-progress"]) == 0
    names = sorted(p.name for p in (tmp_path / "p" / "input").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "p" / "target").iterdir()) and len(names) == 3
    for n in names:
        top, left = map(int, n.removesuffix(".png").split("_")[-2:])
        assert np.array_equal(read_image(tmp_path / "p" / "target" / n).pixels, arr[top:top + 16, left:left + 16])


def test_refuses_to_write_among_the_inputs(tmp_path, capsys):
    write_images(tmp_path / "big", 1)
    assert main(["prepare", "--input", str(tmp_path / "big"), "--out", str(tmp_path / "big"), "--no-progress"]) == 2
    assert "holds input images" in capsys.readouterr().err
