"""One restore-and-score path: training validation, the sweep's test sets, `evaluate` and the
demo all score a restorer on (name, input, target) pairs through here, so a number means the
same thing wherever it is printed."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from noiseda.evaluation.metrics import psnr, ssim
from noiseda.inference.tiling import restore_safely

Pair = tuple[str, torch.Tensor, torch.Tensor]  # (image name, degraded input, target), [0, 1] CxHxW


def image_scores(image: torch.Tensor, target: torch.Tensor, y_channel: bool, with_ssim: bool = True,
                 lpips_net=None) -> dict[str, float]:
    """PSNR (and SSIM, and LPIPS with ``lpips_net``: on RGB, as the field reports it)."""
    scores = {"psnr": psnr(image, target, y_channel)}
    if with_ssim:
        scores["ssim"] = ssim(image, target, y_channel)
    if lpips_net is not None:
        from noiseda.evaluation.lpips import lpips

        scores["lpips"] = lpips(lpips_net, image, target)
    return scores


def restore_and_score(net, pairs: Sequence[Pair], value_range, y_channel: bool, device, tile: Optional[int] = 512,
                      with_ssim: bool = True, lpips_net=None, include_input: bool = False,
                      on_output: Optional[Callable] = None) -> list[dict]:
    """One row per pair: the restored image's scores ("psnr", "ssim", "lpips") and, with
    ``include_input``, the degraded input's ("input_psnr", ...). The net is put in eval mode
    for the scoring and back as it was. ``on_output(index, name, x, restored, y)`` sees
    every restored image."""
    was_training = net.training
    net.eval()
    rows = []
    try:
        with torch.inference_mode():
            for i, (name, x, y) in enumerate(pairs):
                restored = restore_safely(net, x, value_range, tile, 32, device)
                row = {"image": name, **image_scores(restored, y, y_channel, with_ssim, lpips_net)}
                if include_input:
                    row.update({f"input_{k}": v for k, v in image_scores(x, y, y_channel, with_ssim, lpips_net).items()})
                if on_output is not None:
                    on_output(i, name, x, restored, y)
                rows.append(row)
    finally:
        net.train(was_training)
    return rows


def input_rows(pairs: Sequence[Pair], y_channel: bool, with_ssim: bool = True) -> list[dict]:
    """The degraded inputs' own scores: the baseline a restorer must beat."""
    return [{"image": name, **image_scores(x, y, y_channel, with_ssim)} for name, x, y in pairs]


def mean_scores(rows: list[dict], prefix: str = "") -> dict[str, float]:
    """The mean of every score over the rows, keys prefixed (e.g. "val/")."""
    keys = [k for k in rows[0] if k != "image"]
    return {f"{prefix}{k}": sum(r[k] for r in rows) / len(rows) for k in keys}
