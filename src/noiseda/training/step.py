"""The optimisation step, fast by default, with no host synchronisation.

Fast path (each part can be turned off; ``train.mixed_precision=no``,
``train.channels_last=false``, ``train.compile=false`` is the plain fp32 path):
- bf16 autocast on GPUs that support it (``mixed_precision=auto``);
- channels-last memory format for the restorer on GPUs and CPUs (cuDNN's fast layout for bf16
  convolutions: 2.7x for the vanilla step on an H100, vs 1.3x in the default layout) and
  cuDNN's per-shape algorithm search. The diffusion net keeps the default layout: its
  GroupNorms and diffusers' upsampler (which calls .contiguous() at batch >= 64) made it
  slower channels-last, eager or compiled (benchmarks/results/speed-gpu-h100-run2/3.json);
  the noise-da step runs at 1.75x the plain path on an H100 (run 4);
- optional ``torch.compile`` of the restorer and the diffusion net, falling back to eager
  code for any graph that fails to compile (2.53x on an H100 after 110 s of compiling);
- fused Adam, the gradients' joint norm clipped where a method's recipe says so
  (``Method.max_grad_norm``); a non-finite step is skipped on the device (the optimizer's ``found_inf``
  input and a zero EMA weight), so the host never waits for the GPU to decide it;
- losses, gradient norm and non-finite counts accumulate on the device and are read once
  per log interval (``flush``).
"""

from __future__ import annotations

import torch
from torch import nn


def make_optimizer(params, lr: float, betas, eps: float) -> torch.optim.Optimizer:
    """Adam, fused (one kernel for all parameters; also takes ``found_inf`` to skip a step)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, fused=True)


class StepRunner:
    """forward, backward, skip-if-non-finite, Adam, EMA; statistics stay on the device."""

    def __init__(self, accelerator, method: nn.Module, optimizer, ema, restorer: nn.Module,
                 max_grad_norm: float | None = None):
        self.accelerator, self.method, self.optimizer, self.ema = accelerator, method, optimizer, ema
        self.restorer, self.max_grad_norm = restorer, max_grad_norm
        self.params = [p for p in method.parameters() if p.requires_grad]
        self.inner = getattr(optimizer, "optimizer", optimizer)  # Accelerate wraps the optimizer
        dev = accelerator.device
        self.nonfinite_total = torch.zeros((), dtype=torch.long, device=dev)
        self._run = torch.zeros((), dtype=torch.long, device=dev)  # current run of non-finite steps
        self._reset_window()

    def _reset_window(self) -> None:
        dev = self.accelerator.device
        self.window: dict[str, torch.Tensor] = {}
        self.finite_steps = torch.zeros((), device=dev)
        self.max_run = self._run.clone()

    def __call__(self, batch: dict[str, torch.Tensor], lam: float, freeze_restorer: bool = False
                 ) -> dict[str, torch.Tensor]:
        """One step. ``freeze_restorer``: only the method's other nets learn (the restorer's
        gradients are dropped after the all-reduce, so every process agrees; no EMA update)."""
        with self.accelerator.autocast():
            losses = self.method(batch, lam)
        self.accelerator.backward(losses["total"])
        if freeze_restorer:
            for p in self.restorer.parameters():
                p.grad = None  # Adam skips parameters without a gradient
        if self.max_grad_norm:  # a method's recipe clips the joint norm (the norm before clipping is logged)
            grad_norm = self.accelerator.clip_grad_norm_(self.params, self.max_grad_norm)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        scaler = self.accelerator.scaler
        if scaler is None:
            # Gradients are already all-reduced, so every process takes the same decision.
            ok = grad_norm.isfinite()
            self.inner.found_inf = (~ok).float()
        else:
            # fp16: the loss scaler skips overflowing steps itself; count non-finite losses only.
            ok = losses["total"].detach().isfinite()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if not freeze_restorer:
            self.ema.update(self.restorer, ok)

        okf = ok.float()
        for k, v in losses.items():
            v = v.detach().float()
            self.window[k] = self.window.get(k, 0.0) + torch.where(ok, v, torch.zeros_like(v))
        if scaler is None:
            self.window["grad_norm"] = self.window.get("grad_norm", 0.0) + torch.where(ok, grad_norm, 0.0)
        self.finite_steps += okf
        self.nonfinite_total += (~ok).long()
        self._run = (self._run + 1) * (~ok).long()
        self.max_run = torch.maximum(self.max_run, self._run)
        return losses

    def flush(self) -> dict[str, float]:
        """Mean losses over the finite steps since the last flush (one host sync)."""
        keys = list(self.window)
        values = torch.stack([self.window[k] for k in keys] + [self.finite_steps, self.nonfinite_total.float(),
                                                               self.max_run.float()]).tolist()
        *sums, n, total, max_run = values
        out = {("train/grad_norm" if k == "grad_norm" else f"loss/{k}"): s / max(n, 1) for k, s in zip(keys, sums)}
        out["train/nonfinite_skipped"] = int(total)
        out["train/max_nonfinite_run"] = int(max_run)
        self._reset_window()
        return out


def make_accelerator(precision: str, cpu: bool, idle_nets: bool = False):
    """Accelerate keeps one precision per process and refuses another; a second run in the same
    process (a notebook, a comparison script) may ask for one, so its precision state is
    cleared first (the process group, Accelerate's PartialState, is kept). ``idle_nets``: some
    parameters get no gradient at some steps (a method's stages), which DDP must be told."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state.get("_mixed_precision", precision) != precision:
        AcceleratorState._reset_state()
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if idle_nets else []
    return Accelerator(mixed_precision=precision, cpu=cpu, kwargs_handlers=handlers)


def scaler_state(accelerator) -> dict | None:
    """fp16 loss-scaler state (plain numbers, so it fits in state.json)."""
    if accelerator.scaler is None:
        return None
    return {k: (v.item() if torch.is_tensor(v) else v) for k, v in accelerator.scaler.state_dict().items()}
