"""Where and how tensors compute: precision, memory layout, compilation, host-to-device copies.

The fast path is on by default and each part can be turned off (``train.mixed_precision=no``,
``train.channels_last=false``, ``train.compile=false`` give the plain fp32 path); training,
validation, restoring and the diagnostics all ask here, so they agree on what "auto" means.
"""

from __future__ import annotations

import torch
from torch import nn


def default_device() -> torch.device:
    """The first GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 is emulated
    and slower than fp32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers; without them, assume no
        return False


def resolve_precision(name: str, device: torch.device, inference: bool = False) -> str:
    """``auto``: bf16 on a GPU that has it; for inference also on a CPU that computes bf16
    natively (restoring 1.1-2.2x faster than fp32 channels-last, PolyU PSNR -0.03 dB); else
    fp32 ("no"). Training on a CPU stays fp32 (reference numbers; tests and trial runs)."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if device.type == "cpu" and inference and cpu_computes_bf16() else "no"


def resolve_channels_last(flag: bool | None, device: torch.device) -> bool:
    """``None`` (auto): channels-last on GPUs and CPUs, whose convolution kernels prefer it
    (on 2 CPU cores, fp32: restoring 1.03-2.6x depending on the net, the vanilla step 1.4x,
    the noise-da step 1.04x; benchmarks/results/speed-cpu*.json)."""
    return device.type in ("cuda", "cpu") if flag is None else flag


def speed_up(method: nn.Module, channels_last: bool, compile: bool, tune_kernels: bool = False) -> nn.Module:
    """Apply the memory format and compilation in place (state-dict keys are unchanged).
    ``tune_kernels``: let cuDNN time its convolution algorithms once per shape (training
    patches have one shape, so this pays off at once)."""
    torch.backends.cudnn.benchmark = tune_kernels
    if channels_last:
        getattr(method, "restorer", method).to(memory_format=torch.channels_last)
    if compile:
        torch._dynamo.config.suppress_errors = True  # a graph that fails to compile runs eagerly
        # a method names its heavy nets (methods.base.Method.nets_to_compile); a bare net is itself
        for child in getattr(method, "nets_to_compile", lambda: [method])():
            child.compile()
    return method


def host_to_device(x: torch.Tensor, device) -> torch.Tensor:
    """Copy a small host tensor without stalling the host: a plain copy to a GPU waits for all
    queued GPU work, a pinned non-blocking one does not."""
    device = torch.device(device)
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)
