"""`noiseda simulate`: a simulated synthetic-to-real split for a task, from clean images alone.

For datasets that cannot be had, every task still needs a "real" domain that its synthetic
degradation does not cover. The clean images are split (seeded) three ways:

- ``train-clean/``: clean images; training degrades them on the fly with the task's
  synthetic degradation (``data.clean`` + ``data.degradation``);
- ``real/``: other images with the task's real-like simulator, ground truth discarded;
- ``test/{input,target}/``: held-out images with the real-like simulator and their ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from noiseda.data.files import list_images
from noiseda.data.samples import generator
from noiseda.data.io import Picture, read_image, write_image
from noiseda.degrade import compose
from noiseda.errors import NoisedaError

# task -> (synthetic degradation used in training, real-like simulator for the "real" domain)
TASKS = {
    "denoise": ("awgn", "camera-pipeline"),
    "derain": ("rain-streaks", "rain-real"),
    "deblur": ("shake-blur", "blur-real"),
}


def make_split(task: str, clean: Sequence[str], out: str | Path, seed: int = 0,
               fractions: tuple[float, float] = (0.5, 0.25), real_degradation: Optional[str] = None,
               sigma_range: Optional[Sequence[float]] = None) -> dict:
    """Write the split; returns its summary (also saved as ``split.json``). ``real_degradation``:
    a degradation spec for the real and test images instead of the task's simulator (e.g. awgn
    with ``sigma_range`` [25, 25]: a noisy-only set for self-supervised methods)."""
    if task not in TASKS:
        raise NoisedaError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise NoisedaError(f"{out} is not empty; choose a new folder for the split")
    paths = list_images(clean, "--clean", clean_side=True)
    if len(paths) < 3:
        raise NoisedaError(f"--clean: need at least 3 images for a train/real/test split, got {len(paths)}")
    order = torch.randperm(len(paths), generator=generator(seed, "split")).tolist()
    n = len(paths)
    n_real = max(1, round(fractions[1] * n))
    n_train = max(1, min(round(fractions[0] * n), n - n_real - 1))  # every group gets an image
    groups = {"train": order[:n_train], "real": order[n_train:n_train + n_real], "test": order[n_train + n_real:]}
    real_like = real_degradation or TASKS[task][1]
    simulate = compose(real_like, **({"sigma_range": tuple(sigma_range)} if sigma_range else {}))
    tmp = out.with_name(f".{out.name}.tmp")
    for group, idx in groups.items():
        for i in idx:
            pic = read_image(paths[i])
            name = f"{paths[i].stem}.png"
            if group == "train":
                write_image(tmp / "train-clean" / name, Picture(pic.rgb))
                continue
            img = torch.from_numpy(pic.rgb).permute(2, 0, 1).contiguous()
            degraded = simulate(img, generator(seed, "simulate", i)).clamp(0, 1).permute(1, 2, 0).numpy()
            if group == "real":
                write_image(tmp / "real" / name, Picture(degraded))
            else:
                write_image(tmp / "test" / "input" / name, Picture(degraded))
                write_image(tmp / "test" / "target" / name, Picture(pic.rgb))
    summary = {"task": task, "synthetic": TASKS[task][0], "real_like": real_like, "seed": seed,
               **({"sigma_range": list(sigma_range)} if sigma_range else {}),
               **{g: [paths[i].name for i in idx] for g, idx in groups.items()}}
    (tmp / "split.json").write_text(json.dumps(summary, indent=1))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return summary
