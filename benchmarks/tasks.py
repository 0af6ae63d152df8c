"""Per-task benchmark on simulated real domains: vanilla vs noise-da, same seed, same steps.

For --task denoise|derain|deblur: a seeded split of DATA/clean (`noiseda simulate`): clean
training images degraded on the fly by the task's synthetic degradation, a real domain from
the task's real-like simulator on other images, held-out test pairs from the same simulator.
Deblurring is also scored on Levin et al. 2009 (DATA/deblur/levin09: real camera-shake
kernels, sharp ground truth). Writes one JSON with machine details.

    python benchmarks/tasks.py --data ../shared/data --task derain --out benchmarks/results/task-derain-cpu.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from noiseda.inference.export import load_restorer
from noiseda.config import config_to_dict, load_config
from noiseda.evaluation.evaluate import score_pairs, summarize
from noiseda.data.simulate import TASKS, make_split
from noiseda.training.loop import train

from quality import PRESETS, machine  # same presets and machine record as the denoising benchmark


def levin_pairs(root: Path, out: Path) -> Path:
    """Lay Levin et al.'s blurred images (imI_kernelK_img.png) beside copies of their sharp
    ground truth (gt/imI.png) as input/ + target/ with the same names."""
    for blurred in sorted(root.glob("im*_kernel*_img.png")):
        (out / "input").mkdir(parents=True, exist_ok=True)
        (out / "target").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blurred, out / "input" / blurred.name)
        shutil.copyfile(root / "gt" / f"{blurred.name.split('_')[0]}.png", out / "target" / blurred.name)
    return out


def real_sheet(folder: Path, nets: dict, device: str, path: Path, count: int = 6, crop: int = 256) -> None:
    """Centre crops of the first real photos: input | each method (no ground truth exists)."""
    from noiseda.data.files import list_images
    from noiseda.data.store import load_tensor
    from noiseda.inference.tiling import restore_tensor
    from noiseda.evaluation.sheet import contact_sheet

    rows = []
    for p in list_images([str(folder)], "real")[:count]:
        x = load_tensor(p)
        _, h, w = x.shape
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        x = x[:, top:top + crop, left:left + crop]
        with torch.inference_mode():
            outs = [restore_tensor(n, x, s["value_range"], tile=None, device=device).clamp(0, 1).cpu()
                    for n, s in nets.values()]
        rows.append([x] + outs)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, ["real input", *nets], path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu-small")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--work", default="runs/tasks", help="splits and runs go here")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--real-unlabeled", action="store_true",
                    help="real domain = DATA/<task>/real-unlabeled (real photos) instead of the simulator; "
                         "also writes a contact sheet of restored real photos into the work folder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    data = Path(args.data)
    work = Path(args.work) / (args.task + ("-real" if args.real_unlabeled else ""))
    real = data / args.task / "real-unlabeled" if args.real_unlabeled else None
    split = work / "split"
    split.parent.mkdir(parents=True, exist_ok=True)
    if not (split / "split.json").is_file():
        make_split(args.task, [str(data / "clean")], split, seed=0)
    tests = {"simulated": str(split / "test")}
    if args.task == "deblur":
        tests["levin09"] = str(levin_pairs(data / "deblur" / "levin09", work / "levin09"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    y_channel = args.task == "derain"
    common = PRESETS[args.preset] + [
        "data.pairs=null", f"data.clean={split / 'train-clean'}", f"data.degradation={TASKS[args.task][0]}",
        f"data.real={real or split / 'real'}", "data.val_pairs=null", "data.cache=memory",
        f"data.workers={0 if device == 'cpu' else 4}", "train.seed=0", "train.log_every=20",
        "train.checkpoint_every=100000", "train.val_every=100000",
    ] + ([f"train.steps={args.steps}"] if args.steps else []) + args.set

    result = {"benchmark": "task", "task": args.task, "preset": args.preset, "machine": machine(),
              "real_domain": str(real) if real else f"simulated ({TASKS[args.task][1]})",
              "metric": "PSNR/SSIM on Y (BT.601)" if y_channel else "PSNR/SSIM on RGB",
              "weights_scored": "EMA of the restorer", "methods": {}, "input": {}}
    nets = {}
    for method in ("vanilla", "noise-da"):
        cfg = load_config(args.task, common + [f"method.name={method}"])
        run = work / f"{args.preset}-{method}"
        tic = time.perf_counter()
        train(cfg, run, resume=(run / "checkpoints").is_dir(), progress=False)
        seconds = time.perf_counter() - tic
        net, spec = load_restorer(run / "final", device)
        nets[method] = (net, spec)
        entry = {"train_seconds": seconds, "steps": cfg.train.steps, "config": config_to_dict(cfg)}
        with torch.inference_mode():
            for name, pairs in tests.items():
                s = summarize(score_pairs(net, spec, pairs, y_channel, device, tile=None))
                entry[name] = {"psnr": s["psnr"], "ssim": s["ssim"], "images": s["images"]}
                result["input"][name] = {"psnr": s["input_psnr"], "ssim": s["input_ssim"]}
        result["methods"][method] = entry
        print(method, {k: v for k, v in entry.items() if k in tests}, f"{seconds:.0f} s", flush=True)
    if real:
        # In the work folder, not beside --out: it shows crops of the research-only real photos.
        sheet = work / "contact-sheet.png"
        real_sheet(real, nets, device, sheet)
        result["contact_sheet"] = str(sheet)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print("input", result["input"], "->", args.out)


if __name__ == "__main__":
    main()
