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
    """SSIM as the field computes it (Wang et al. 2004): Gaussian window, sigma 1.5, population
    covariance, mean over channels. This is scikit-image's implementation, the reference that
    published numbers are checked against (and far faster on CPU than a float64 torch version)."""
    from skimage.metrics import structural_similarity

    pred, target = _prepare(pred, target, y_channel, crop)
    vals = [
        structural_similarity(
            p.permute(1, 2, 0).cpu().numpy(), t.permute(1, 2, 0).cpu().numpy(), channel_axis=2,
            data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        for p, t in zip(pred, target)
    ]
    return float(sum(vals) / len(vals))
