"""Training one run of a sweep and scoring it on the sweep's test sets.

`TestSets` decodes the test pairs once per process and scores a restorer on all of them;
`train_and_score` trains (or resumes) one (variant, seed) run, records the PSNR curves every
``eval_every`` steps, and writes the final per-image scores of the EMA and raw weights to
``scores.json``, which marks the run finished.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch

from noiseda.data.io import write_atomic
from noiseda.data.store import load_image_pairs
from noiseda.device import default_device
from noiseda.evaluation.scoring import input_rows, restore_and_score
from noiseda.experiments.sweep.spec import Sweep, run_config, run_dir
from noiseda.inference.export import load_restorer
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint
from noiseda.training.loop import train

METRICS = ("psnr", "ssim")
WEIGHTS = ("ema", "raw")


class TestSets:
    """The test pairs, decoded once per process; scores a restorer on all of them."""

    def __init__(self, test_sets: dict[str, str]):
        self.sets = {name: load_image_pairs(spec, f"test set {name}") for name, spec in test_sets.items()}

    def score(self, net, value_range, y_channel: bool, device, with_ssim: bool) -> dict[str, list[dict]]:
        return {name: restore_and_score(net, pairs, value_range, y_channel, device, with_ssim=with_ssim)
                for name, pairs in self.sets.items()}

    def inputs(self, y_channel: bool) -> dict[str, list[dict]]:
        return {name: input_rows(pairs, y_channel) for name, pairs in self.sets.items()}


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def train_and_score(sweep: Sweep, out: Path, variant: str, seed: int, threads: int, progress: bool) -> dict:
    """Train one run (resuming it if it has checkpoints) and write its per-image scores."""
    cfg = run_config(sweep, variant, seed, threads)
    run = run_dir(out, variant, seed)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tests = TestSets(sweep.test_sets)
    y_channel = cfg.task == "derain"
    device = default_device()

    def curve_point(step: int, nets: dict) -> dict:
        values = {}
        for weights, net in nets.items():
            for name, rows in tests.score(net, cfg.data.value_range, y_channel, device, False).items():
                values[f"sweep/{name}/{weights}/psnr"] = _mean(rows, "psnr")
        return values

    tic = time.perf_counter()
    resume = bool(list_checkpoints(run))  # a run stopped before its first checkpoint starts over
    train(cfg, run, resume=resume, overwrite=not resume, progress=progress,
          evaluator=curve_point if sweep.eval_every else None)
    seconds = time.perf_counter() - tic
    ema_net, spec = load_restorer(run / "final", device)
    raw_net = copy.deepcopy(ema_net)  # the same net, given the raw weights below
    last = load_checkpoint(list_checkpoints(run)[-1])
    raw_net.load_state_dict({k[len("restorer."):]: v for k, v in last["model"].items() if k.startswith("restorer.")})
    scores = {w: tests.score(n, spec["value_range"], y_channel, device, True)
              for w, n in (("ema", ema_net), ("raw", raw_net))}
    result = {"variant": variant, "seed": seed, "steps": last["state"]["step"],
              "train_seconds_this_session": seconds, "scores": scores,
              "input": tests.inputs(y_channel)}
    write_atomic(run / "scores.json", json.dumps(result, indent=1).encode())
    return result
