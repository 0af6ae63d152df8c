"""Copy census: every dtype/layout copy in one noise-da training step under bf16 autocast.

On a GPU, copies are memory-bound kernels; the H100 profile of the all-channels-last step
(speed-gpu-h100-run2.json) put aten::copy_ at 35% of device time. This script lists, for one
step of the paper setting on any device (CPU is fine: autocast inserts the same casts), each
copy by kind (a weight or its gradient vs an activation), dtypes and memory layout, with the
bytes written, so layout and precision choices can be judged without a GPU.

    python benchmarks/copy_census.py --batch 2 --out /tmp/copies.json
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from noiseda.methods import build_method
from noiseda.config import load_config
from noiseda.training.ema import EMA
from noiseda.nets import build_net
from noiseda.training.step import StepRunner, make_optimizer
from noiseda.device import speed_up
from speed import SETTINGS, SingleDevice, images_batch
from quality import machine

COPY_OPS = {"_to_copy", "copy_", "clone"}


def layout(t: torch.Tensor) -> str:
    cl = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return "channels-last" if cl else "default"


class CopyLog(TorchDispatchMode):
    def __init__(self, param_shapes: set):
        super().__init__()
        self.param_shapes, self.count, self.bytes = param_shapes, collections.Counter(), collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in COPY_OPS:
            src, dst = (args[1], args[0]) if name == "copy_" else (args[0], out)
            kind = "weight or grad" if tuple(src.shape) in self.param_shapes else "activation"
            key = f"{name} {kind}: {str(src.dtype)[6:]} {layout(src)} -> {str(dst.dtype)[6:]} {layout(dst)}"
            self.count[key] += 1
            self.bytes[key] += dst.numel() * dst.element_size()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--restorer-layout", choices=["channels-last", "default"], default="channels-last",
                    help="the restorer's memory format (the diffusion net keeps the default, as training does)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cl = args.restorer_layout == "channels-last"
    cfg = load_config(None, SETTINGS["paper"] + ["method.name=noise-da", f"train.batch_size={args.batch}"])
    torch.manual_seed(0)
    restorer = build_net(cfg.net.name)
    method = build_method(cfg, restorer).to(device)
    speed_up(method, cl, False)
    runner = StepRunner(SingleDevice(device, "bf16"), method,
                        make_optimizer(method.parameters(), cfg.train.lr, cfg.train.adam_betas, cfg.train.adam_eps),
                        EMA(restorer, cfg.train.ema_decay).to(device), restorer)
    batch = images_batch(0, args.batch, cfg.data.patch_size, device, cl)
    runner(batch, 0.1)  # warm-up: optimizer state, cached masks
    log = CopyLog({tuple(p.shape) for p in method.parameters()})
    with log:
        runner(batch, 0.1)
    rows = [{"copy": k, "calls": log.count[k], "mbytes_written": log.bytes[k] / 1e6}
            for k in sorted(log.count, key=lambda k: -log.bytes[k])]
    for r in rows:
        print(f"{r['calls']:5d} {r['mbytes_written']:9.1f} MB  {r['copy']}")
    total = {kind: sum(r["mbytes_written"] for r in rows if kind in r["copy"]) for kind in ("weight", "activation")}
    print(f"weights/grads: {total['weight']:.1f} MB, activations: {total['activation']:.1f} MB per step")
    Path(args.out).write_text(json.dumps({"benchmark": "copy_census", "machine": machine(), "device": str(device),
                                          "batch": args.batch, "restorer_layout": args.restorer_layout,
                                          "rows": rows, "mbytes_by_kind": total}, indent=2))


if __name__ == "__main__":
    main()
