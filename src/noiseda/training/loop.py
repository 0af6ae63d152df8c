"""The training loop, on Accelerate: the same code on CPU, one GPU, several GPUs or nodes.

Determinism: every random draw at step k (data, noise levels, coins, dropout)
is seeded from (seed, k, rank), so resuming from the checkpoint of step k
gives exactly the run that did not stop (bitwise on CPU).

The loop knows no method: it asks the method's hooks (methods/base.py) for its parameter
groups, lambda, a frozen restorer and a monitor.
"""

from __future__ import annotations

import math
import os
import shlex
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader

from noiseda.config import Config, save_config
from noiseda.data.samples import StepBatches, derive_seed
from noiseda.data.setup import build_samples, device_degradation, load_validation
from noiseda.device import default_device, resolve_channels_last, resolve_precision, speed_up
from noiseda.errors import NoisedaError, TrainingInterrupted
from noiseda.evaluation.report import write_report
from noiseda.evaluation.scoring import input_rows, mean_scores, restore_and_score
from noiseda.inference.export import export_restorer, init_restorer, net_kwargs, net_spec
from noiseda.inference.tiling import from_model_range, to_model_range
from noiseda.methods import Batch, build_method, method_class
from noiseda.methods.base import MonitorContext
from noiseda.nets import build_net
from noiseda.training.checkpoint import save_checkpoint
from noiseda.training.ema import EMA
from noiseda.training.folder_lock import folder_lock
from noiseda.training.progress import RunLog, RunNotes, TimedIterator
from noiseda.training.resume import apply_learning_rates, resume_changes
from noiseda.training.run_folder import check_run_dir, delete_earlier_run, newest_loadable, prepare_run_dir, truncate_jsonl
from noiseda.training.signals import StopSignals, ignore_stop_signals
from noiseda.training.step import StepRunner, make_accelerator, make_optimizer, scaler_state


def train(cfg: Config, run_dir: str | Path, resume: bool = False, progress: bool = True,
          evaluator: Optional[Callable[[int, dict], dict]] = None, overwrite: bool = False) -> dict:
    """Train; returns a summary dict (steps, best validation, exported folders).

    SIGINT or SIGTERM ends the current step, saves a checkpoint and raises TrainingInterrupted
    (a second signal stops at once). ``overwrite`` deletes an earlier run's files in the folder.

    ``evaluator(step, {"ema": net, "raw": net})``, called on the main process at every
    validation step, returns further scalars to log (the sweep runner's curves on its test
    sets, for both weights); it must not draw from torch's global random stream."""
    run_dir = Path(run_dir)
    # Checked before any data is loaded (a wrong folder fails in a second, not after decoding)
    # and before the lock file is written into the folder.
    if run_dir.exists() and not run_dir.is_dir():
        raise NoisedaError(f"output folder {run_dir} is a file; choose another --out")
    check_run_dir(run_dir, cfg)
    if os.environ.get("RANK", "0") != "0":  # one process of a multi-process run: rank 0 holds the folder
        return _train(cfg, run_dir, resume, progress, evaluator, overwrite)
    with folder_lock(run_dir):
        return _train(cfg, run_dir, resume, progress, evaluator, overwrite)


def _train(cfg: Config, run_dir: Path, resume: bool, progress: bool,
           evaluator: Optional[Callable[[int, dict], dict]], overwrite: bool) -> dict:
    run = _Run(cfg, run_dir, resume, progress, evaluator, overwrite)
    try:
        return run.train()
    finally:
        run.log.close()


class _Run:
    """One training session: set up (model, data, optimiser, resume), then the steps, each with
    its logging, validation and checkpoint."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool, progress: bool,
                 evaluator: Optional[Callable[[int, dict], dict]], overwrite: bool):
        from tqdm import tqdm

        t = self.t = cfg.train
        self.cfg, self.run_dir, self.evaluator = cfg, run_dir, evaluator
        if t.threads:
            torch.set_num_threads(t.threads)
        device = default_device()
        self.precision = resolve_precision(t.mixed_precision, device)
        self.accelerator = make_accelerator(self.precision, cpu=device.type == "cpu",
                                            idle_nets=method_class(cfg.method.name).idle_nets)
        self.main = self.accelerator.is_main_process
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        checkpoints = prepare_run_dir(run_dir, resume, overwrite)
        changes = self._build_model(resume, progress)
        ckpt, unreadable = self._build_optimizer(resume, checkpoints)
        self._open_folder(overwrite)
        self.bar = tqdm(total=t.steps, initial=self.start, disable=not (self.main and progress), desc=cfg.method.name,
                        dynamic_ncols=True, unit="step")
        self.runner = StepRunner(self.accelerator, self.method, self.optimizer, self.ema, self.core.restorer,
                                 self.core.max_grad_norm())
        self.runner.nonfinite_total += ckpt["state"].get("nonfinite_total", 0) if ckpt else 0
        self.monitor = self._make_monitor()
        # The degraded inputs' scores go beside every validation score; one note if the restorer
        # stays below them once training has settled.
        self.val_input = (mean_scores(input_rows(self.val_images, cfg.task == "derain"), "val/input_")
                          if self.main and self.val_images else {})
        if self.main and self.start:
            for problem in unreadable:
                self.bar.write(f"note: {problem}; using the checkpoint before it")
            for key, old, new in changes:
                self.bar.write(f"resume: {key} changed from {old!r} to {new!r}")
            self.bar.write(f"resuming {run_dir} from step {self.start} of {t.steps}")

    def _build_model(self, resume: bool, progress: bool) -> list:
        cfg, t, acc = self.cfg, self.t, self.accelerator
        torch.manual_seed(t.seed)  # initial weights depend on the seed only
        restorer = build_net(cfg.net.name, zero_init_last=cfg.net.zero_init_last, **net_kwargs(cfg))
        self.method = build_method(cfg, restorer)
        # A resume's -c/--set: applied (and named in the log) or refused, before any data is loaded.
        changes = resume_changes(self.run_dir / "config.yaml", cfg, self.method) if resume else []
        if t.init and not resume:  # after the method's own nets: they start as in a run without init
            init_restorer(restorer, t.init, net_spec(cfg))
        # data.cache=disk: one process per machine decodes; memory: the first checks that all fit.
        with acc.local_main_process_first():
            self.samples = build_samples(cfg, "real" in self.method.streams, "reference" in self.method.streams,
                                         progress=self.main and progress, check_memory=acc.is_local_main_process)
        self.degrade_batch = device_degradation(cfg)
        self.val_images = load_validation(cfg)
        self.ramp = cfg.method.lambda_ramp_steps or math.ceil(300 * self.samples.synthetic_size
                                                              / (t.batch_size * self.world))
        return changes

    def _build_optimizer(self, resume: bool, checkpoints: list) -> tuple[Optional[dict], list[str]]:
        t, acc, method = self.t, self.accelerator, self.method
        groups = method.parameter_groups(t)
        self.base_lrs, self.lr_scale = [g["lr"] for g in groups], 1.0  # the configured rates; the method scales them
        self.optimizer = make_optimizer(groups, t.lr, t.adam_betas, t.adam_eps)
        self.ema = EMA(method.restorer, t.ema_decay, t.ema_warmup)
        self.start, self.best = 0, None
        ckpt, unreadable = None, []
        if resume:
            ckpt, unreadable = newest_loadable(self.run_dir, checkpoints)
            method.load_state_dict(ckpt["model"])
            st = ckpt["state"]
            self.ema.load_state_dict(ckpt["ema"], st["ema_updates"])
            self.start, self.best = st["step"], st.get("best")
            if self.start > t.steps:
                raise NoisedaError(f"{self.run_dir} is already at step {self.start}, past train.steps={t.steps}: "
                                   "resume it with more steps, or start a new run in another folder")
        self.ema.to(acc.device)
        channels_last = resolve_channels_last(t.channels_last, acc.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        speed_up(method, channels_last, t.compile, tune_kernels=acc.device.type == "cuda")
        self.method, self.optimizer = acc.prepare(method, self.optimizer)
        if ckpt is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            apply_learning_rates(self.optimizer, groups)  # the config's rates, not those saved with the state
            if acc.scaler is not None and ckpt["state"].get("grad_scaler"):
                acc.scaler.load_state_dict(ckpt["state"]["grad_scaler"])
        self.core = acc.unwrap_model(self.method)
        return ckpt, unreadable

    def _open_folder(self, overwrite: bool) -> None:
        run_dir = self.run_dir
        if self.main:
            if overwrite:  # config, method and data are checked by now: a typo never costs the old run
                delete_earlier_run(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, run_dir / "config.yaml")
            truncate_jsonl(run_dir / "metrics.jsonl", self.start)
        self.accelerator.wait_for_everyone()
        self.log = RunLog(run_dir, self.main, self.start)
        if self.main and self.start == 0:
            self.log.log(0, {"info/params_restorer": sum(p.numel() for p in self.core.restorer.parameters()),
                             "info/lambda_ramp_steps": self.ramp, "info/world_size": self.world,
                             "info/bf16": self.precision == "bf16", "info/fp16": self.precision == "fp16"})

    def _make_monitor(self):
        if not (self.main and self.t.monitor):
            return None
        value_range, memory_format = self.cfg.data.value_range, self.memory_format
        return self.core.make_monitor(MonitorContext(
            samples=self.samples, seed=self.t.seed, degrade_batch=self.degrade_batch, device=self.accelerator.device,
            to_model=lambda v: to_model_range(v.contiguous(memory_format=memory_format), value_range),
            to_image=lambda v: from_model_range(v.float(), value_range).clamp(0, 1).cpu(),
            folder=self.run_dir / "monitor", real_pairs=self.val_images))

    def _to_device(self, batch: dict, step: int) -> Batch:
        device = self.accelerator.device
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if self.degrade_batch is not None:  # synthesis on the device, seeded per (step, rank) like the rest
            g = torch.Generator(device).manual_seed(derive_seed(self.t.seed, "degrade", step, self.rank))
            batch["synthetic"] = self.degrade_batch(batch["clean"], g)
        value_range, memory_format = self.cfg.data.value_range, self.memory_format
        return Batch(**{k: to_model_range(v.contiguous(memory_format=memory_format), value_range)
                        for k, v in batch.items()})

    def save(self, step: int) -> None:
        if self.main:
            save_checkpoint(
                self.run_dir, step,
                {"model": self.core.state_dict(), "ema": self.ema.state_dict()},
                self.optimizer.state_dict(),
                {"step": step, "ema_updates": self.ema.updates, "best": self.best,
                 "nonfinite_total": int(self.runner.nonfinite_total),
                 "lambda": self.core.lambda_at_step(step, self.ramp),
                 "grad_scaler": scaler_state(self.accelerator)},
                self.t.keep_checkpoints,
            )
        self.accelerator.wait_for_everyone()

    def train(self) -> dict:
        t, acc = self.t, self.accelerator
        loader = DataLoader(self.samples, batch_sampler=StepBatches(self.start, t.batch_size, self.rank, self.world, t.steps),
                            num_workers=self.cfg.data.workers, worker_init_fn=ignore_stop_signals,
                            pin_memory=acc.device.type == "cuda", persistent_workers=self.cfg.data.workers > 0)
        self.batches = TimedIterator(loader)
        self.last_log, self.tic = self.start, time.perf_counter()
        self.notes = RunNotes(self.bar.write, self.main, self.cfg, acc.device)
        step = self.start
        with StopSignals(self.world) as stop:
            for step, batch in enumerate(self.batches, start=self.start + 1):
                torch.manual_seed(derive_seed(t.seed, "step", step, self.rank))
                batch = self._to_device(batch, step)
                self._begin_step(step)
                lam = self.core.lambda_at_step(step, self.ramp)
                self.method.train()
                self.runner(batch, lam, freeze_restorer=self.core.restorer_frozen(step))
                self.bar.update(1)
                if step % t.log_every == 0 or step == t.steps:
                    self._log_interval(step, lam)
                self._validate_and_save(step)
                if step < t.steps and stop.requested(acc, step, t.log_every):
                    if not (step % t.checkpoint_every == 0):
                        self.save(step)
                    self.bar.close()
                    raise TrainingInterrupted(f"{stop.name or 'stopped'} at step {step} of {t.steps}; checkpoint saved",
                                              f"noiseda train --out {shlex.quote(str(self.run_dir))} --resume")
        return self._finish(step)

    def _begin_step(self, step: int) -> None:
        """The method's schedules over the run: its progress, and the learning rates' factor."""
        self.core.begin_step(step, self.t.steps)
        scale = self.core.lr_scale()
        if scale != self.lr_scale:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * scale
            self.lr_scale = scale

    def _log_interval(self, step: int, lam: float) -> None:
        t, bar = self.t, self.bar
        values = self.runner.flush()  # the one host sync per log interval
        elapsed = time.perf_counter() - self.tic  # after it: the GPU's queued steps count
        max_run = values.pop("train/max_nonfinite_run")
        waited = self.batches.take_seconds() / max(elapsed, 1e-9)
        rate = (step - self.last_log) / max(elapsed, 1e-9)
        values.update({"train/lambda": lam, "train/lr": self.base_lrs[0] * self.lr_scale, "train/steps_per_s": rate,
                       "train/ema_decay": self.ema.current_decay(), "train/data_wait": waited})
        self.log.log(step, values)
        self.notes.after_interval(step, rate, waited, self.core.stage())
        bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in values.items()
                         if k in ("loss/total", "loss/sup", "loss/noise")} | {"lam": f"{lam:.3f}"})
        self.last_log, self.tic = step, time.perf_counter()
        if max_run >= t.max_nonfinite:
            self.save(step)
            bar.close()
            raise NoisedaError(f"training stopped at step {step}: {max_run} non-finite losses in a row (checkpoint "
                               f"saved in {self.run_dir / 'checkpoints'}); lower train.lr or use mixed_precision=no")

    def _validate_and_save(self, step: int) -> None:
        t, acc = self.t, self.accelerator
        validating = step % t.val_every == 0 or step == t.steps
        checkpointing = step % t.checkpoint_every == 0 or step == t.steps
        if (validating or checkpointing) and acc.device.type == "cuda":
            torch.cuda.synchronize(acc.device)  # queued training work is training time
        paused = time.perf_counter()  # validation and checkpoints are not
        if validating:
            if self.main:
                self._validate(step)
            acc.wait_for_everyone()
        if checkpointing:
            self.save(step)
        self.tic += time.perf_counter() - paused

    def _validate(self, step: int) -> None:
        cfg, bar = self.cfg, self.bar
        extra = {}
        if self.val_images:
            extra = mean_scores(restore_and_score(self.ema.net, self.val_images, cfg.data.value_range,
                                                  cfg.task == "derain", self.accelerator.device), "val/")
            extra.update(self.val_input)
            settled_at = self.t.steps // 10  # a tenth of the run, and lambda's ramp
            if self.core.lambda_role is not None:
                settled_at = max(settled_at, self.core.lambda_delay + self.ramp)
            self.notes.after_validation(step, settled_at, extra["val/psnr"], self.val_input["val/input_psnr"])
            if self.best is None or extra["val/psnr"] > self.best["val/psnr"]:
                self.best = {"step": step, **extra}
                export_restorer(self.run_dir / "best", self.ema.state_dict(),
                                net_spec(cfg, step=step, weights="ema", **extra))
        if self.evaluator is not None:
            extra.update(self.evaluator(step, {"ema": self.ema.net, "raw": self.core.restorer}))
        if self.monitor is not None:
            ramped = step >= self.core.lambda_delay + self.ramp  # lambda at its ceiling
            values, warning = self.monitor(step, ramped)
            extra.update(values)
            if warning:
                bar.write(f"note: {warning}")
        if extra:
            self.log.log(step, extra)
            bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in extra.items()))

    def _finish(self, step: int) -> dict:
        acc, run_dir = self.accelerator, self.run_dir
        self.bar.close()
        summary = {"run_dir": str(run_dir), "steps": step, "best": self.best, "final": str(run_dir / "final"),
                   "nonfinite_skipped": int(self.runner.nonfinite_total), "main_process": self.main}
        if self.main:
            export_restorer(run_dir / "final", self.ema.state_dict(), net_spec(self.cfg, step=step, weights="ema"))
            write_report(run_dir, summary, self.ema.net, self.val_images, self.cfg.data.value_range, acc.device)
        acc.wait_for_everyone()
        self.log.close()
        acc.end_training()
        return summary


