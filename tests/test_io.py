"""The image reader/writer: bit depths, modes, orientation, corrupt files, atomic writes."""

import numpy as np
import pytest
from PIL import Image

from noiseda.data.io import Picture, read_image, write_image
from noiseda.errors import NoisedaError


def _ramp16(h=9, w=11, c=3):
    rng = np.random.default_rng(0)
    return rng.integers(0, 65536, size=(h, w, c), dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_round_trips_exactly(tmp_path, suffix):
    arr = _ramp16()
    src = tmp_path / f"a{suffix}"
    write_image(src, Picture(arr.astype(np.float32) / 65535.0, bit_depth=16))
    pic = read_image(src)
    assert pic.bit_depth == 16 and pic.pixels.shape == (9, 11, 3)
    assert np.array_equal(np.round(pic.pixels * 65535).astype(np.uint16), arr)


def test_16bit_gray_png_from_pillow(tmp_path):
    arr = _ramp16(c=1)[:, :, 0]
    Image.fromarray(arr).save(tmp_path / "g.png")
    pic = read_image(tmp_path / "g.png")
    assert pic.bit_depth == 16 and pic.pixels.shape == (9, 11, 1)
    assert np.array_equal(np.round(pic.pixels[:, :, 0] * 65535).astype(np.uint16), arr)
    assert pic.rgb.shape == (9, 11, 3)


def test_rgba_keeps_alpha_and_gray_stays_gray(tmp_path):
    rgba = (np.random.default_rng(1).random((5, 6, 4)) * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    assert pic.pixels.shape == (5, 6, 3) and np.array_equal(np.round(pic.alpha * 255), rgba[:, :, 3])
    write_image(tmp_path / "b.png", pic)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgba)
    Image.fromarray(rgba[:, :, 0], "L").save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").pixels.shape == (5, 6, 1)


def test_palette_and_cmyk_are_converted(tmp_path):
    Image.new("P", (4, 3), 7).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").pixels.shape == (3, 4, 3)
    Image.new("CMYK", (4, 3), (10, 20, 30, 0)).save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").pixels.shape == (3, 4, 3)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (8, 4), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").pixels.shape == (8, 4, 3)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    good = tmp_path / "g.png"
    Image.new("RGB", (64, 64), "blue").save(good)
    bad = tmp_path / "t.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(NoisedaError, match="cannot read image .*t.png"):
        read_image(bad)
    with pytest.raises(NoisedaError, match="image not found"):
        read_image(tmp_path / "missing.png")


def test_pixel_limit(tmp_path, monkeypatch):
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    monkeypatch.setenv("NOISEDA_MAX_PIXELS", "100")
    with pytest.raises(NoisedaError, match="over the pixel limit of 100"):
        read_image(tmp_path / "big.png")
    monkeypatch.setenv("NOISEDA_MAX_PIXELS", "400")
    assert read_image(tmp_path / "big.png").pixels.shape == (20, 20, 3)
    for bad in ("abc", "0", "-5", "1e6"):
        monkeypatch.setenv("NOISEDA_MAX_PIXELS", bad)
        with pytest.raises(NoisedaError, match="NOISEDA_MAX_PIXELS: expected a positive whole number"):
            read_image(tmp_path / "big.png")


def test_write_is_atomic_on_failure(tmp_path):
    target = tmp_path / "out.png"
    write_image(target, Picture(np.zeros((2, 2, 3), np.float32)))
    before = target.read_bytes()
    with pytest.raises(NoisedaError):
        write_image(tmp_path / "out.xyz", Picture(np.zeros((2, 2, 3), np.float32)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_gray_with_alpha_writes_in_every_format(tmp_path, suffix):
    pic = Picture(np.full((4, 5, 1), 0.5, np.float32), alpha=np.ones((4, 5), np.float32))
    write_image(tmp_path / f"o{suffix}", pic)
    back = read_image(tmp_path / f"o{suffix}")
    assert back.pixels.shape[:2] == (4, 5)
    assert np.allclose(back.pixels.mean(), 0.5, atol=0.01)
