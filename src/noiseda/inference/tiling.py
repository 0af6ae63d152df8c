"""Restoring whole images: value-range mapping and tiled inference with blended overlaps.

The image stays in host memory; tiles go to the device in small batches. In
overlaps, each tile's weight ramps linearly from the tile edge, except along
image borders, and the accumulated weights are divided out, so the blend
weights sum to one everywhere.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn


def to_model_range(x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    lo, hi = value_range
    return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo


def from_model_range(x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    lo, hi = value_range
    return x if (lo, hi) == (0.0, 1.0) else (x - lo) / (hi - lo)


class FastRestorer(nn.Module):
    """A restorer for fast inference: channels-last input, autocast, fp32 output. The residual
    sum ``x + net(x)`` of our nets stays in fp32, so bf16 only perturbs the predicted residual."""

    def __init__(self, net: nn.Module, precision: str, channels_last: bool):
        super().__init__()
        self.net, self.precision, self.channels_last = net, precision, channels_last
        if channels_last:
            net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return self.net(x).float()


def for_inference(net: nn.Module, device, precision: str = "auto", compile: bool = False) -> nn.Module:
    """Channels-last on GPUs and CPUs (exact up to float rounding). ``precision``: auto (bf16 on
    GPUs that have it and on CPUs that compute it natively, else fp32) | no | bf16 | fp16.
    ``compile``: torch.compile the result (on an H100, U-Net-S at 1024x1024: 2.9x the fp32
    MP/s vs 1.6x without; speed-gpu-h100-run3.json); code that fails to compile runs eagerly."""
    from noiseda.device import resolve_channels_last, resolve_precision

    if getattr(net, "per_image", False):  # it optimises in fp32 on the image it is given
        return net
    device = torch.device(device)
    precision = resolve_precision(precision, device, inference=True)
    channels_last = resolve_channels_last(None, device)
    if precision != "no" or channels_last:
        net = FastRestorer(net, precision, channels_last)
    if compile:
        torch._dynamo.config.suppress_errors = True
        # Compiled code is made per input shape anyway; cuDNN's per-shape algorithm search too.
        torch.backends.cudnn.benchmark = device.type == "cuda"
        net = torch.compile(net)
    return net


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, taper_start: bool, taper_end: bool) -> torch.Tensor:
    """Blend weights along one tile axis. At an inner tile edge the outer quarter of the overlap
    gets weight 0 (its pixels saw the tile border, not the image) and the next half ramps up
    linearly; image borders get no taper. Exact stitching when the receptive-field radius is at
    most overlap / 4."""
    w = torch.ones(length)
    margin = overlap // 4
    width = max(overlap - 2 * margin, 1)
    if overlap > 0:
        i = torch.arange(overlap, dtype=torch.float32)
        ramp = ((i - margin + 0.5) / width).clamp(0, 1)
        if taper_start:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if taper_end:
            w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


@torch.no_grad()
def restore_tensor(
    net: nn.Module,
    image: torch.Tensor,
    value_range: Sequence[float] = (0.0, 1.0),
    tile: Optional[int] = 512,
    overlap: int = 32,
    batch: int = 4,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Restore a CxHxW float image in [0, 1]; returns CxHxW in [0, 1] (not clipped) on the CPU."""
    c, h, w = image.shape
    device = torch.device(device)
    if tile is None or (h <= tile and w <= tile):
        x = to_model_range(image[None].to(device), value_range)
        return from_model_range(net(x), value_range)[0].float().cpu()
    overlap = max(0, min(overlap, tile // 2))
    out = torch.zeros(c, h, w)
    weight = torch.zeros(1, h, w)
    boxes = [(t, l) for t in _starts(h, tile, overlap) for l in _starts(w, tile, overlap)]
    th, tw = min(tile, h), min(tile, w)
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        x = torch.stack([image[:, t : t + th, l : l + tw] for t, l in chunk]).to(device)
        y = from_model_range(net(to_model_range(x, value_range)), value_range).float().cpu()
        for (t, l), tile_out in zip(chunk, y):
            wy = _ramp(th, overlap, t > 0, t + th < h)
            wx = _ramp(tw, overlap, l > 0, l + tw < w)
            wt = wy[:, None] * wx[None, :]
            out[:, t : t + th, l : l + tw] += tile_out * wt
            weight[:, t : t + th, l : l + tw] += wt
    return out.div_(weight)  # in place: for a huge image every full-size copy counts


def choose_tile(net: nn.Module, device, batch: int = 4, share: float = 0.5, largest: int = 2048) -> int:
    """A tile size from free device memory: on a GPU, the net's memory per pixel is measured on a
    small probe and tiles are sized to use ``share`` of what is free (multiples of 64, 128 to
    ``largest``); on a CPU, 512 (host memory is not the limit there, and larger tiles are no faster)."""
    device = torch.device(device)
    if device.type != "cuda":
        return 512
    free, _ = torch.cuda.mem_get_info(device)
    probe = 128
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        net(torch.zeros(1, 3, probe, probe, device=device))
    per_pixel = max(torch.cuda.max_memory_allocated(device) - base, 1) / probe**2
    side = int((share * free / (per_pixel * batch)) ** 0.5) // 64 * 64
    return max(128, min(largest, side))


def restore_safely(net, image, value_range, tile, overlap, device, batch: int = 4) -> torch.Tensor:
    """restore_tensor, halving the tile size on device out-of-memory (down to 64 px);
    ``tile="auto"`` picks it from free memory (choose_tile). A per-image restorer (one blur
    kernel per image) always gets the whole image."""
    if getattr(net, "per_image", False):
        tile = None
    if tile == "auto":
        tile = choose_tile(net, device, batch)
    while True:
        try:
            return restore_tensor(net, image, value_range, tile, overlap, batch, device)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            tile = 512 if tile is None else tile // 2
            if tile < 64:
                raise
