"""Shared fixtures: tiny images written by the tests themselves, and tiny-net overrides."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Small enough that a noise-da step takes milliseconds on a CPU.
TINY = [
    "net.name=unet", "net.width=4",
    "diffusion.base_width=8", "diffusion.channel_mults=[1,2]", "diffusion.layers_per_block=1",
    "diffusion.norm_groups=4", "diffusion.attention_head_dim=8",
    "data.patch_size=16", "train.batch_size=2", "train.steps=6",
    "train.log_every=2", "train.val_every=3", "train.checkpoint_every=3",
    "method.lambda_ramp_steps=4", "train.threads=1",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Decoded-image and dataset caches go to a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("NOISEDA_CACHE", str(tmp_path_factory.mktemp("noiseda-cache")))


def write_images(folder: Path, n: int, size=(24, 28), seed: int = 0, suffix: str = ".png", noise: float = 0.0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    out = []
    for i in range(n):
        base = np.stack([np.sin(xx / (3 + i)), np.cos(yy / (4 + i)), np.sin((xx + yy) / 5)], -1) * 0.4 + 0.5
        img = np.clip(base + noise * rng.standard_normal(base.shape), 0, 1)
        path = folder / f"img{i}{suffix}"
        Image.fromarray((img * 255).astype(np.uint8)).save(path)
        out.append(path)
    return out


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    """clean/, real/ (noisy, unlabeled) and val/{noisy,clean}/ with matching names."""
    write_images(tmp_path / "clean", 3)
    write_images(tmp_path / "real", 3, seed=1, noise=0.05, suffix=".jpg")
    write_images(tmp_path / "val" / "clean", 2, seed=2)
    write_images(tmp_path / "val" / "noisy", 2, seed=2, noise=0.05)
    return {"root": tmp_path, "clean": tmp_path / "clean", "real": tmp_path / "real", "val": tmp_path / "val"}


def data_overrides(ds: dict[str, Path]) -> list[str]:
    return [f"data.clean={ds['clean']}", f"data.real={ds['real']}", f"data.val_pairs={ds['val']}"]


def tiny_config(ds, *extra: str):
    from noiseda.config import load_config

    return load_config(None, TINY + data_overrides(ds) + list(extra))


def pytest_configure(config):
    """A suite started in the background (`pytest &`, nohup) inherits SIGINT ignored; the tests
    of Ctrl-C handling need Python's own handler, as in a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
