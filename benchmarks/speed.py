"""Speed benchmark: training steps and restoring, the plain fp32 path and the fast path side by side.

Training steps (vanilla and noise-da) are timed on batches already on the device, so the
numbers are the step's own; FLOPs per step come from ``torch.utils.flop_counter``. Restoring
times one whole image. The loss-curve check trains plain and fast on the same seeded batches
and compares the curves. Paths:
  plain         fp32, default memory layout, eager (the reference path)
  fast          the training default: mixed_precision=auto (bf16 on GPUs), the restorer
                channels-last, bf16 GroupNorm in the diffusion net, cuDNN search, eager
  fast-nchw     fast with the restorer in the default memory layout
  bf16          fast with bf16 asked for (on a CPU, auto trains in fp32)
  fast-compile  fast + torch.compile (GPU only by default: compiling on a CPU takes minutes)
  fast-compile-cl  fast-compile with the compiler's channels-last conversion forced on

    python benchmarks/speed.py --settings small --out benchmarks/results/speed-cpu.json
    python benchmarks/speed.py --settings paper small --paths plain fast fast-compile --out speed-gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from noiseda.methods import Batch, build_method
from noiseda.config import load_config
from noiseda.training.ema import EMA
from noiseda.inference.tiling import for_inference
from noiseda.nets import build_net
from noiseda.training.step import StepRunner, make_optimizer
from noiseda.device import resolve_channels_last, resolve_precision, speed_up

from quality import PRESETS, machine

SETTINGS = {
    # The paper's: batch 40 of 128 px, U-Net-S, the 62.6M-parameter diffusion net.
    "paper": ["net.name=unet-s", "data.patch_size=128", "train.batch_size=40"],
    # The small CPU preset of the quality benchmark.
    "small": [o for o in PRESETS["cpu-small"] if not o.startswith(("train.steps", "method.lambda_ramp"))],
}
PATHS = {
    "plain": {"mixed_precision": "no", "channels_last": False, "compile": False},
    "fast": {"mixed_precision": "auto", "channels_last": None, "compile": False},
    "fast-nchw": {"mixed_precision": "auto", "channels_last": False, "compile": False},
    # bf16 asked for explicitly: what `train.mixed_precision=bf16` gives on a CPU with bf16 arithmetic.
    "bf16": {"mixed_precision": "bf16", "channels_last": None, "compile": False},
    "fast-compile": {"mixed_precision": "auto", "channels_last": None, "compile": True},
    # The compiler's own channels-last conversion, which its heuristic skips for U-Nets (some
    # convolutions have fewer output than input channels): it would remove cuDNN's NCHW/NHWC
    # transposes, about 32 ms of the 152 ms compiled noise-da step on an H100 (run 4).
    "fast-compile-cl": {"mixed_precision": "auto", "channels_last": None, "compile": True,
                        "inductor": {"force_layout_optimization": True}},
}
# Dense bf16 tensor-core peaks (FLOP/s) for the model-FLOPs-utilisation estimate.
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


class SingleDevice:
    """What StepRunner needs of an Accelerator, for one device (Accelerate's state is global,
    so one process could not switch precision between the paths)."""

    scaler = None

    def __init__(self, device: torch.device, precision: str):
        self.device, self.precision = device, precision

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_batch(step: int, batch: int, size: int, device, channels_last: bool, seed: int = 0) -> Batch:
    """Seeded smooth images: AWGN on the synthetic side, signal-dependent noise on the real side."""
    g = torch.Generator().manual_seed(seed * 100003 + step)

    def smooth(n):
        return F.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g), size=(size, size),
                             mode="bicubic", align_corners=False).clamp(0, 1)

    clean, other = smooth(batch), smooth(batch)
    sigma = torch.rand(batch, 1, 1, 1, generator=g) * 50 / 255
    syn_in = clean + sigma * torch.randn(clean.shape, generator=g)
    real = other + (0.01 * other + 0.0004).sqrt() * torch.randn(other.shape, generator=g)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return Batch(synthetic=syn_in, clean=clean, real=real, reference=other).map(
        lambda v: v.to(device, memory_format=fmt))


def build_runner(setting: str, method_name: str, path: str, device: torch.device):
    cfg = load_config(None, SETTINGS[setting] + [f"method.name={method_name}"])
    p = PATHS[path]
    torch.manual_seed(0)
    restorer = build_net(cfg.net.name)
    method = build_method(cfg, restorer).to(device)
    ema = EMA(restorer, cfg.train.ema_decay).to(device)
    precision = resolve_precision(p["mixed_precision"], device)
    channels_last = resolve_channels_last(p["channels_last"], device)
    speed_up(method, channels_last, p["compile"], tune_kernels=path != "plain" and device.type == "cuda")
    optimizer = make_optimizer(method.parameters(), cfg.train.lr, cfg.train.adam_betas, cfg.train.adam_eps)
    runner = StepRunner(SingleDevice(device, precision), method, optimizer, ema, restorer)
    return cfg, runner, {"precision": precision, "channels_last": channels_last, "compile": p["compile"]}


def count_flops(setting: str, method_name: str, device: torch.device) -> float:
    """FLOPs of one forward + backward step (fp32, eager; the count does not depend on precision)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg, runner, _ = build_runner(setting, method_name, "plain", device)
    batch = images_batch(0, cfg.train.batch_size, cfg.data.patch_size, device, False)
    with FlopCounterMode(display=False) as counter:
        runner.method(batch, 0.1)["total"].backward()
    return float(counter.get_total_flops())


def profile_table(runner, batch, device, rows: int = 25) -> str:
    """The most expensive operators of two steps (after the warm-up), by device time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(2):
            runner(batch, 0.1)
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)


def compiler_options(path: str):
    """The path's torch.compile (inductor) settings, for as long as its steps run (compiling
    happens at the first step), starting from no compiled code: else a compiled path would
    reuse an earlier one's (same code, same guards, whatever the settings)."""
    import torch._inductor.config

    if PATHS[path]["compile"]:
        torch._dynamo.reset()
    return torch._inductor.config.patch(PATHS[path].get("inductor", {}))


def time_training(setting, method_name, path, device, warmup, steps, repeats, profile=False) -> dict:
    with compiler_options(path):
        return _time_training(setting, method_name, path, device, warmup, steps, repeats, profile)


def _time_training(setting, method_name, path, device, warmup, steps, repeats, profile) -> dict:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    cfg, runner, resolved = build_runner(setting, method_name, path, device)
    b, size = cfg.train.batch_size, cfg.data.patch_size
    batches = [images_batch(i, b, size, device, resolved["channels_last"]) for i in range(2)]
    tic = time.perf_counter()
    for i in range(warmup):
        runner(batches[i % 2], 0.1)
        if i == 0:  # compiling happens here: say how long it took, in case the stage is cut short
            sync(device)
            print(f"  {setting} {method_name} {path}: first step {time.perf_counter() - tic:.1f} s", flush=True)
    sync(device)
    warmup_s = time.perf_counter() - tic
    per_step = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for i in range(steps):
            runner(batches[i % 2], 0.1)
        sync(device)
        per_step.append((time.perf_counter() - tic) / steps)
    stats = runner.flush()
    table = profile_table(runner, batches[0], device) if profile else None
    ms = statistics.median(per_step) * 1e3
    row = {"setting": setting, "method": method_name, "path": path, **resolved, "batch": b, "patch": size,
           "net": cfg.net.name, "ms_per_step": ms, "images_per_s": b / (ms / 1e3),
           "ms_per_step_all_repeats": [t * 1e3 for t in per_step], "warmup_s": warmup_s,
           "loss_finite": stats["train/nonfinite_skipped"] == 0}
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if table:
        row["profile"] = table
        print(table, flush=True)
    del runner
    return row


RESTORE_PATHS = {
    # name: (for_inference precision, None: the bare net; cuDNN algorithm search; torch.compile)
    "plain": (None, False, False),  # fp32, default layout: the reference
    "fast": ("auto", False, False),  # as `noiseda restore` runs: channels-last, bf16 where native
    "fast-fp32": ("no", False, False),  # as `noiseda restore --precision no` runs: channels-last fp32
    "fast-tuned": ("auto", True, False),  # + cuDNN's per-shape algorithm search
    "fast-compile": ("auto", True, True),  # + torch.compile, as `noiseda restore --compile` runs
}


def time_restore(path: str, net_name: str, size: int, device: torch.device, repeats: int) -> tuple[dict, torch.Tensor]:
    precision, tuned, compiled = RESTORE_PATHS[path]
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = tuned
    net = build_net(net_name).to(device).eval()
    if precision is not None:
        net = for_inference(copy.deepcopy(net), device, precision, compile=compiled)
    x = images_batch(0, 1, size, device, False).synthetic
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            sync(device)
            tic = time.perf_counter()
            out = net(x).float()
            sync(device)
            if i >= 2:  # two warm-up passes (cuDNN search, compiling, allocator)
                times.append(time.perf_counter() - tic)
    torch.backends.cudnn.benchmark = False
    s = statistics.median(times)
    row = {"path": path, "net": net_name, "size": size, "ms": s * 1e3, "mp_per_s": size * size / 1e6 / s,
           "precision": getattr(net, "precision", "no"), "channels_last": getattr(net, "channels_last", False)}
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row, out.cpu()


def loss_curves(setting: str, device: torch.device, steps: int, paths=("plain", "fast")) -> dict:
    """noise-da trained from the same init on the same seeded batches, per path."""
    curves = {}
    for path in paths:
        cfg, runner, resolved = build_runner(setting, "noise-da", path, device)
        losses = []
        with compiler_options(path):
            for step in range(1, steps + 1):
                torch.manual_seed(step)  # same coins, noise levels and dropout draws in every path
                batch = images_batch(step, cfg.train.batch_size, cfg.data.patch_size, device,
                                     resolved["channels_last"], seed=1)
                losses.append(runner(batch, 0.2)["total"].detach().float())
        curves[path] = torch.stack(losses).cpu()
        del runner
    window = max(steps // 10, 1)
    smooth = {k: v.unfold(0, window, 1).mean(1) for k, v in curves.items()}
    ref = smooth[paths[0]]
    out = {"setting": setting, "steps": steps, "smoothing_window": window, "lambda": 0.2,
           "curves": {k: v.tolist() for k, v in curves.items()}}
    for path in paths[1:]:
        rel = ((smooth[path] - ref).abs() / ref.abs()).max().item()
        out[f"{path}_max_rel_diff_smoothed"] = rel
        out[f"{path}_last_window_mean"] = smooth[path][-1].item()
    out[f"{paths[0]}_last_window_mean"] = ref[-1].item()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=["small"])
    ap.add_argument("--methods", nargs="*", default=["vanilla", "noise-da"], help="none: time restoring only")
    ap.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=None,
                    help="default: plain fast (CPU), plain fast fast-compile (GPU)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--restore-size", type=int, default=None, help="default: 1024 (GPU), 512 (CPU)")
    ap.add_argument("--curve-steps", type=int, default=0,
                    help="loss-curve check length (0: skip); every path against the first")
    ap.add_argument("--curve-setting", choices=sorted(SETTINGS), default="small")
    ap.add_argument("--profile", nargs=3, metavar=("SETTING", "METHOD", "PATH"),
                    help="print the operator profile of one combination, e.g. paper noise-da fast")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--restore-paths", nargs="+", choices=sorted(set(RESTORE_PATHS) - {"plain"}), default=["fast"],
                    help="timed against plain")
    ap.add_argument("--restore-nets", nargs="+", default=["unet-s"], help="restoration nets to time restoring with")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    device = torch.device(args.device)
    paths = args.paths or (["plain", "fast", "fast-compile"] if device.type == "cuda" else ["plain", "fast"])
    info = machine()
    info["torch_threads"] = torch.get_num_threads()
    peak = next((v for k, v in BF16_PEAK.items() if k in info.get("gpu", "")), None)
    result = {"benchmark": "speed", "machine": info, "device": str(device), "paths": {p: PATHS[p] for p in paths},
              "settings": {s: SETTINGS[s] for s in args.settings}, "train": [], "ratios": {}, "restore": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after every measurement: a run cut short still leaves its numbers
        out.write_text(json.dumps(result, indent=2))

    for setting in args.settings:
        for method_name in args.methods:
            flops = count_flops(setting, method_name, device)
            rows = {}
            for path in paths:
                try:
                    row = time_training(setting, method_name, path, device, args.warmup, args.steps, args.repeats,
                                        profile=(setting, method_name, path) == tuple(args.profile or ()))
                except Exception as e:  # one failing path must not cost the others' numbers
                    print(f"{setting} {method_name} {path}: failed: {e!r}", flush=True)
                    result["train"].append({"setting": setting, "method": method_name, "path": path,
                                            "error": repr(e)})
                    write()
                    continue
                row["flops_per_step"] = flops
                row["tflops_per_s"] = flops / (row["ms_per_step"] / 1e3) / 1e12
                row["mfu_vs_bf16_peak"] = row["tflops_per_s"] * 1e12 / peak if peak else None
                rows[path] = row
                result["train"].append(row)
                print(f"{setting:6s} {method_name:9s} {path:13s} {row['images_per_s']:9.1f} img/s "
                      f"{row['ms_per_step']:8.1f} ms/step" + (f"  {row['peak_mem_gib']:.1f} GiB" if "peak_mem_gib" in row
                                                           else ""), flush=True)
                write()
            for path in [p for p in paths[1:] if p in rows and "plain" in rows]:
                r = {"images_per_s": rows[path]["images_per_s"] / rows["plain"]["images_per_s"]}
                if "peak_mem_gib" in rows["plain"]:
                    r["peak_mem"] = rows[path]["peak_mem_gib"] / rows["plain"]["peak_mem_gib"]
                result["ratios"][f"{setting}/{method_name}/{path}_vs_plain"] = r
            write()

    if not args.skip_restore:
        size = args.restore_size or (1024 if device.type == "cuda" else 512)
        for net_name in args.restore_nets:
            plain_row, plain_out = time_restore("plain", net_name, size, device, args.repeats * 3)
            result["restore"].append(plain_row)
            for path in args.restore_paths:
                try:
                    row, out_img = time_restore(path, net_name, size, device, args.repeats * 3)
                except Exception as e:
                    print(f"restore {net_name} {path}: failed: {e!r}", flush=True)
                    result["restore"].append({"path": path, "net": net_name, "error": repr(e)})
                    continue
                row["max_abs_diff_vs_plain"] = (out_img - plain_out).abs().max().item()
                result["restore"].append(row)
                ratio = row["mp_per_s"] / plain_row["mp_per_s"]
                result["ratios"][f"restore/{net_name}/{path}_vs_plain"] = {"mp_per_s": ratio}
                print(f"restore {net_name} {size}px: plain {plain_row['mp_per_s']:.3f} MP/s, {path} "
                      f"{row['mp_per_s']:.3f} MP/s ({ratio:.2f}x, {row['precision']})", flush=True)
                write()
        write()

    if args.curve_steps:
        result["loss_curve"] = lc = loss_curves(args.curve_setting, device, args.curve_steps, paths)
        for path in paths[1:]:
            print(f"loss curve ({args.curve_steps} steps), {path} vs {paths[0]}: max relative difference of "
                  f"smoothed curves {lc[f'{path}_max_rel_diff_smoothed']:.4f}", flush=True)
    write()
    print(f"written {out}")


if __name__ == "__main__":
    main()
