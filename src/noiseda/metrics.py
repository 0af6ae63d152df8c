"""Image quality metrics on float images in [0, 1] (NCHW or CHW), whole image, no tiling."""

from __future__ import annotations

import torch


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma as MATLAB's rgb2ycbcr gives it, scaled to [0, 1] (16..235 range)."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(1, keepdim=True) + 16.0) / 255.0


def _prepare(pred: torch.Tensor, target: torch.Tensor, y_channel: bool, crop: int):
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() == 3:
        pred, target = pred[None], target[None]
    pred, target = pred.double().clamp(0, 1), target.double().clamp(0, 1)
    if y_channel and pred.shape[1] == 3:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    if crop:
        pred, target = pred[..., crop:-crop, crop:-crop], target[..., crop:-crop, crop:-crop]
    return pred, target


def psnr(pred: torch.Tensor, target: torch.Tensor, y_channel: bool = False, crop: int = 0) -> float:
    pred, target = _prepare(pred, target, y_channel, crop)
    mse = torch.mean((pred - target) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


def ssim(pred: torch.Tensor, target: torch.Tensor, y_channel: bool = False, crop: int = 0) -> float:
    """SSIM with an 11x11 Gaussian window, sigma 1.5 (Wang et al. 2004)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    pred, target = _prepare(pred, target, y_channel, crop)
    val = structural_similarity_index_measure(
        pred, target, data_range=1.0, gaussian_kernel=True, sigma=1.5, kernel_size=11
    )
    return float(val)
