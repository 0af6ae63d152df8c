"""Property-based fuzzing: the image reader and the config parser either succeed or raise our
one-line NoisedaError, never anything else, whatever bytes or structures they are given."""

import io

import numpy as np
import pytest
from PIL import Image

from noiseda.config import config_from_dict, load_config
from noiseda.data.io import read_image
from noiseda.errors import NoisedaError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {".png": _valid("PNG"), ".jpg": _valid("JPEG"), ".tif": _valid("TIFF"), ".bmp": _valid("BMP")}


def _read(path, data: bytes):
    path.write_bytes(data)
    try:
        pic = read_image(path)
    except NoisedaError as exc:
        assert "\n" not in str(exc) and str(path.name) in str(exc)
        return
    assert pic.pixels.ndim == 3 and np.isfinite(pic.pixels).all()


@FAST
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(sorted(SEEDS)))
def test_random_bytes(tmp_path, data, suffix):
    _read(tmp_path / f"x{suffix}", data)


@FAST
@given(suffix=st.sampled_from(sorted(SEEDS)), cut=st.integers(0, 10_000), flips=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_truncated_and_corrupted_valid_files(tmp_path, suffix, cut, flips):
    data = bytearray(SEEDS[suffix][: max(1, cut % (len(SEEDS[suffix]) + 1))])
    for pos, value in flips:
        data[pos % len(data)] = value
    _read(tmp_path / f"y{suffix}", bytes(data))


values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
sections = st.sampled_from(["net", "diffusion", "method", "data", "train", "task", "bogus"])
fields = st.sampled_from(["name", "width", "steps", "lr", "t_range", "clean", "patch_size", "batch_size",
                          "mixed_precision", "degrade_on", "channel_mults", "value_range", "margin", "x"])


@FAST
@given(st.dictionaries(sections, st.dictionaries(fields, values, max_size=3) | values, max_size=4))
def test_random_config_structures(tree):
    try:
        config_from_dict(tree)
    except NoisedaError as exc:
        assert "\n" not in str(exc)


@FAST
@given(key=st.text(max_size=20), value=st.text(max_size=20))
def test_random_overrides(key, value):
    try:
        load_config(None, [f"{key}={value}"])
    except NoisedaError as exc:
        assert "\n" not in str(exc)
