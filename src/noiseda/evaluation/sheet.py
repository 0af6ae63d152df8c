"""Contact sheets: several images side by side, for visual checks."""

from __future__ import annotations

from pathlib import Path

import torch

from noiseda.data.io import to_uint8


def centre_crop(t: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of a CxHxW image (all of a side shorter than size)."""
    _, h, w = t.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return t[:, top:top + size, left:left + size]


def contact_sheet(rows: list[list[torch.Tensor]], labels: list[str], path: Path) -> None:
    """A grid of CxHxW images in [0, 1]: one row per example, one column per label, 4 px gutters.
    Images in a column may differ in size; each cell is as large as the largest."""
    from PIL import Image, ImageDraw

    h = max(t.shape[1] for row in rows for t in row)
    w = max(t.shape[2] for row in rows for t in row)
    gut, head = 4, 18
    canvas = Image.new("RGB", (len(labels) * (w + gut) - gut, head + len(rows) * (h + gut) - gut), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels):
        draw.text((j * (w + gut) + 4, 3), label, fill="black")
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            canvas.paste(Image.fromarray(to_uint8(t.permute(1, 2, 0).numpy())), (j * (w + gut), head + i * (h + gut)))
    canvas.save(path)
