"""The training loop, on Accelerate: the same code on CPU, one GPU, several GPUs or nodes.

Determinism: every random draw at step k (data, noise levels, coins, dropout)
is seeded from (seed, k, rank), so resuming from the checkpoint of step k
gives exactly the run that did not stop (bitwise on CPU).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader

from noiseda import __version__
from noiseda.adapt import build_method, lambda_at
from noiseda.checkpoint import export_restorer, init_restorer, list_checkpoints, load_checkpoint, save_checkpoint
from noiseda.config import Config, save_config
from noiseda.data.adapters import split_spec
from noiseda.data.datasets import StepBatches, derive_seed
from noiseda.data.setup import build_samples, device_degradation, load_validation
from noiseda.ema import EMA
from noiseda.errors import NoisedaError, TrainingInterrupted
from noiseda.folder_lock import folder_lock
from noiseda.infer import from_model_range, restore_tensor, to_model_range
from noiseda.metrics import psnr, ssim
from noiseda.monitor import ShortcutMonitor
from noiseda.nets import build_net
from noiseda.report import write_report
from noiseda.resume import apply_learning_rates, resume_changes
from noiseda.step import StepRunner, make_optimizer, resolve_channels_last, resolve_precision, speed_up


def net_kwargs(cfg: Config) -> dict:
    return ({"width": cfg.net.width} if cfg.net.width else {}) | dict(cfg.net.options)


def net_spec(cfg: Config, **extra) -> dict:
    return {
        "format": "noiseda-restorer/1",
        "net": cfg.net.name,
        "kwargs": net_kwargs(cfg),
        "value_range": list(cfg.data.value_range),
        "task": cfg.task,
        "method": cfg.method.name,
        "noiseda_version": __version__,
        **extra,
    }


def validate_restorer(net, images, value_range, y_channel: bool, device) -> dict[str, float]:
    ps, ss = [], []
    net.eval()
    for _, x, y in images:
        out = restore_tensor(net, x, value_range, tile=512, overlap=32, device=device)
        ps.append(psnr(out, y, y_channel))
        ss.append(ssim(out, y, y_channel))
    return {"val/psnr": sum(ps) / len(ps), "val/ssim": sum(ss) / len(ss)}


def input_scores(images, y_channel: bool) -> dict[str, float]:
    """The degraded inputs' own scores against their targets: the baseline a restorer must beat."""
    ps = [psnr(x, y, y_channel) for _, x, y in images]
    ss = [ssim(x, y, y_channel) for _, x, y in images]
    return {"val/input_psnr": sum(ps) / len(ps), "val/input_ssim": sum(ss) / len(ss)}


def _check_run_dir(run_dir: Path, cfg: Config) -> None:
    """The run folder must not be, or hold, a data folder: runs never write among the inputs."""
    d = cfg.data
    specs = [*d.clean, *d.pairs_input, *d.pairs_target, *d.real, *d.reference, d.pairs, d.val_pairs]
    out = run_dir.resolve()
    for spec in filter(None, specs):
        folder = Path(split_spec(spec)[1].split("*")[0]).expanduser().resolve()
        if out == folder or folder.is_relative_to(out) or out.is_relative_to(folder):
            raise NoisedaError(f"output folder {run_dir} overlaps the data folder {spec}; choose another --out")


class _Logger:
    """metrics.jsonl + TensorBoard, main process only."""

    def __init__(self, run_dir: Path, enabled: bool, start: int):
        self.enabled = enabled
        self.jsonl = run_dir / "metrics.jsonl" if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # On resume, TensorBoard hides the events a stopped run wrote after its checkpoint.
                self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start + 1 if start else None)
            except ImportError:  # tensorboard is a dependency, but stay usable without it
                self.tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _truncate_jsonl(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


# What a run writes into its folder (scores.json: the sweep's): --overwrite deletes these, nothing else.
RUN_FILES = ("checkpoints", "tensorboard", "metrics.jsonl", "best", "final", "report", "report.md", "config.yaml",
             "monitor", "scores.json")


def _earlier_run(run_dir: Path) -> list[Path]:
    return [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]


def _delete_earlier_run(run_dir: Path) -> None:
    for path in _earlier_run(run_dir):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> list[Path]:
    """The checkpoints to resume from ([] for a fresh start). A fresh start never mixes its logs
    with an earlier run's: a folder holding one needs --resume (if it has a checkpoint) or
    --overwrite, whose deletion waits until the new run's config and data have been checked."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NoisedaError(f"output folder {run_dir} is a file; choose another --out")
    checkpoints = list_checkpoints(run_dir)
    earlier = _earlier_run(run_dir)
    if resume:
        if overwrite:
            raise NoisedaError("--resume continues a run and --overwrite deletes it: pass one of them")
        if not checkpoints:
            hint = "; it stopped before its first checkpoint: start it again with --overwrite" if earlier else ""
            raise NoisedaError(f"--resume: no complete checkpoint in {run_dir}{hint}")
        return checkpoints
    if earlier and not overwrite:
        if checkpoints:
            raise NoisedaError(f"{run_dir} holds a run with checkpoints: pass --resume to continue it, "
                               "--overwrite to start over, or choose another --out")
        raise NoisedaError(f"{run_dir} holds an earlier run's files (no checkpoint): pass --overwrite to "
                           "start over, or choose another --out")
    return []


def _newest_loadable(run_dir: Path, checkpoints: list[Path]) -> tuple[dict, list[str]]:
    """The newest checkpoint that loads, and why the newer ones did not (a file truncated by a
    full disk or a copy): one bad checkpoint costs its steps, not the run."""
    problems = []
    for path in reversed(checkpoints):
        try:
            return load_checkpoint(path), problems
        except NoisedaError as exc:
            problems.append(str(exc))
    raise NoisedaError(f"--resume: no checkpoint in {run_dir} can be loaded ({problems[0]})")


class _StopSignals:
    """SIGINT (Ctrl-C) or SIGTERM during training: finish the step, save a checkpoint, stop.
    A second signal, more than GRACE seconds later, stops at once (launchers such as torchrun
    forward a Ctrl-C that the terminal has already delivered: that copy must not count).
    Several processes stop together, at the next log step."""

    GRACE = 2.0

    def __init__(self, processes: int = 1):
        self.name: Optional[str] = None
        self.processes = processes
        self._first = 0.0
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.name is not None:
            if time.monotonic() - self._first < self.GRACE:
                return
            self.__exit__()
            raise KeyboardInterrupt
        self.name, self._first = signal.Signals(signum).name, time.monotonic()
        when = "this step" if self.processes == 1 else "the next log step"
        # os.write, not print: the signal may arrive in the middle of a write to stderr.
        os.write(2, f"\nnoiseda: {self.name}: saving a checkpoint after {when} (again to stop at once)\n".encode())

    def requested(self, accelerator, step: int, every: int) -> bool:
        if accelerator.num_processes == 1:
            return self.name is not None
        if step % every:  # all processes must agree on the step: ask at log steps only
            return False
        flag = torch.tensor([int(self.name is not None)], device=accelerator.device)
        return bool(accelerator.reduce(flag, "sum").item())


def _ignore_stop_signals(worker_id: int) -> None:
    """Data-loader workers leave Ctrl-C and SIGTERM to the training process, which still needs
    them to finish its step; they exit when it closes the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _accelerator(precision: str, cpu: bool):
    """Accelerate keeps one precision per process and refuses another; a second run in the same
    process (a notebook, a comparison script) may ask for one, so its precision state is
    cleared first (the process group, Accelerate's PartialState, is kept)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state.get("_mixed_precision", precision) != precision:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=cpu)


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
    _check_run_dir(run_dir, cfg)
    if os.environ.get("RANK", "0") != "0":  # one process of a multi-process run: rank 0 holds the folder
        return _train(cfg, run_dir, resume, progress, evaluator, overwrite)
    with folder_lock(run_dir):
        return _train(cfg, run_dir, resume, progress, evaluator, overwrite)


def _train(cfg: Config, run_dir: Path, resume: bool, progress: bool,
           evaluator: Optional[Callable[[int, dict], dict]], overwrite: bool) -> dict:
    from tqdm import tqdm

    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(t.mixed_precision, device)
    accelerator = _accelerator(precision, cpu=device.type == "cpu")
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes

    checkpoints = _prepare_run_dir(run_dir, resume, overwrite)

    torch.manual_seed(t.seed)  # initial weights depend on the seed only
    restorer = build_net(cfg.net.name, zero_init_last=cfg.net.zero_init_last, **net_kwargs(cfg))
    method = build_method(cfg, restorer)
    # A resume's -c/--set: applied (and named in the log) or refused, before any data is loaded.
    changes = resume_changes(run_dir / "config.yaml", cfg, hasattr(method, "diffusion")) if resume else []
    if t.init and not resume:  # after the method's own nets: they start as in a run without init
        init_restorer(restorer, t.init, net_spec(cfg))
    # data.cache=disk: one process per machine decodes; memory: the first checks that all fit.
    with accelerator.local_main_process_first():
        samples = build_samples(cfg, method.needs_real, method.needs_reference, progress=main and progress,
                                check_memory=accelerator.is_local_main_process)
    degrade_batch = device_degradation(cfg)
    val_images = load_validation(cfg)


    ramp = cfg.method.lambda_ramp_steps or math.ceil(300 * samples.synthetic_size / (t.batch_size * world))
    params = list(method.parameters())
    if t.diffusion_lr and hasattr(method, "diffusion"):
        params = [{"params": list(method.restorer.parameters())},
                  {"params": list(method.diffusion.parameters()), "lr": t.diffusion_lr}]
    optimizer = make_optimizer(params, t.lr, t.adam_betas, t.adam_eps)
    ema = EMA(restorer, t.ema_decay, t.ema_warmup)
    start, best, nonfinite_total = 0, None, 0
    ckpt, unreadable = None, []
    if resume:
        ckpt, unreadable = _newest_loadable(run_dir, checkpoints)
        method.load_state_dict(ckpt["model"])
        st = ckpt["state"]
        ema.load_state_dict(ckpt["ema"], st["ema_updates"])
        start, best, nonfinite_total = st["step"], st.get("best"), st.get("nonfinite_total", 0)
        if start > t.steps:
            raise NoisedaError(f"{run_dir} is already at step {start}, past train.steps={t.steps}: resume it with "
                               "more steps, or start a new run in another folder")
    ema.to(accelerator.device)
    channels_last = resolve_channels_last(t.channels_last, accelerator.device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    speed_up(method, channels_last, t.compile, tune_kernels=accelerator.device.type == "cuda")
    method, optimizer = accelerator.prepare(method, optimizer)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        apply_learning_rates(optimizer, cfg)  # the config's rates, not those saved with the state
        if accelerator.scaler is not None and ckpt["state"].get("grad_scaler"):
            accelerator.scaler.load_state_dict(ckpt["state"]["grad_scaler"])
    core = accelerator.unwrap_model(method)

    if main:
        if overwrite:  # config, method and data are checked by now: a typo never costs the old run
            _delete_earlier_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        _truncate_jsonl(run_dir / "metrics.jsonl", start)
    accelerator.wait_for_everyone()
    logger = _Logger(run_dir, main, start)
    if main and start == 0:
        logger.log(0, {"info/params_restorer": sum(p.numel() for p in core.restorer.parameters()),
                       "info/lambda_ramp_steps": ramp, "info/world_size": world,
                       "info/bf16": precision == "bf16", "info/fp16": precision == "fp16"})

    loader = DataLoader(
        samples,
        batch_sampler=StepBatches(start, t.batch_size, rank, world, t.steps),
        num_workers=cfg.data.workers,
        worker_init_fn=_ignore_stop_signals,
        pin_memory=accelerator.device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
    )
    value_range = cfg.data.value_range
    has_noise_loss = hasattr(core, "diffusion")
    uses_lambda = getattr(core, "uses_lambda", False)  # an adaptation loss weighted by the ramp
    bar = tqdm(total=t.steps, initial=start, disable=not (main and progress), desc=cfg.method.name,
               dynamic_ncols=True, unit="step")
    runner = StepRunner(accelerator, method, optimizer, ema, core.restorer)
    runner.nonfinite_total += nonfinite_total
    last_log, tic = start, time.perf_counter()
    first_log = None  # this session's first log step
    batches = _TimedIterator(loader)
    hinted = False
    slowed = SlowdownWatch()

    def save(step: int) -> None:
        if main:
            save_checkpoint(
                run_dir, step,
                {"model": core.state_dict(), "ema": ema.state_dict()},
                optimizer.state_dict(),
                {"step": step, "ema_updates": ema.updates, "best": best,
                 "nonfinite_total": int(runner.nonfinite_total),
                 "lambda": method_lambda(cfg, step, ramp),
                 "grad_scaler": _scaler_state(accelerator)},
                t.keep_checkpoints,
            )
        accelerator.wait_for_everyone()

    monitor = None
    if main and has_noise_loss and t.monitor:
        monitor = ShortcutMonitor(
            core, samples, t.seed, cfg.method.t_range, degrade_batch, accelerator.device,
            to_model=lambda v: to_model_range(v.contiguous(memory_format=memory_format), value_range),
            to_image=lambda v: from_model_range(v.float(), value_range).clamp(0, 1).cpu(),
            folder=run_dir / "monitor", real_pairs=val_images)

    # The degraded inputs' scores go beside every validation score; one note if the restorer
    # stays below them once training has settled.
    val_input = input_scores(val_images, cfg.task == "derain") if main and val_images else {}
    warned_below_input = False
    step = start
    if main and start:
        for problem in unreadable:
            bar.write(f"note: {problem}; using the checkpoint before it")
        for key, old, new in changes:
            bar.write(f"resume: {key} changed from {old!r} to {new!r}")
        bar.write(f"resuming {run_dir} from step {start} of {t.steps}")
    with _StopSignals(world) as stop:
        for step, batch in enumerate(batches, start=start + 1):
            torch.manual_seed(derive_seed(t.seed, "step", step, rank))
            batch = {k: v.to(accelerator.device, non_blocking=True) for k, v in batch.items()}
            if degrade_batch is not None:  # synthesis on the device, seeded per (step, rank) like the rest
                g = torch.Generator(accelerator.device).manual_seed(derive_seed(t.seed, "degrade", step, rank))
                batch["syn_in"] = degrade_batch(batch["syn_gt"], g)
            batch = {k: to_model_range(v.contiguous(memory_format=memory_format), value_range) for k, v in batch.items()}
            lam = method_lambda(cfg, step, ramp) if uses_lambda else 0.0
            frozen = cfg.method.warmup_freezes_restorer and step <= cfg.method.diffusion_warmup_steps
            method.train()
            runner(batch, lam, freeze_restorer=frozen)
            bar.update(1)

            if step % t.log_every == 0 or step == t.steps:
                values = runner.flush()  # the one host sync per log interval
                elapsed = time.perf_counter() - tic  # after it: the GPU's queued steps count
                max_run = values.pop("train/max_nonfinite_run")
                waited = batches.take_seconds() / max(elapsed, 1e-9)
                values.update({"train/lambda": lam, "train/steps_per_s": (step - last_log) / max(elapsed, 1e-9),
                               "train/ema_decay": ema.current_decay(), "train/data_wait": waited})
                if waited > 0.3 and last_log > start and not hinted and main:  # not the first interval: workers start there
                    hinted = True
                    bar.write(f"note: {waited:.0%} of the time went to waiting for training data; {_loader_advice(cfg)}")
                logger.log(step, values)
                if last_log == first_log and main and step < t.steps:
                    # From the second interval: the first holds start-up, compiling and tuning.
                    rate = values["train/steps_per_s"]
                    bar.write(f"{rate:.2f} steps/s: about {_duration((t.steps - step) / rate)} for the "
                              f"{t.steps - step} steps left (validation and checkpoints not included)")
                if first_log is not None and main and slowed(values["train/steps_per_s"]):  # not the start-up interval
                    bar.write(f"note: training slowed to {values['train/steps_per_s']:.3g} steps/s from "
                              f"{slowed.fastest:.3g} earlier in this run; {_slowdown_advice(accelerator.device)}")
                bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in values.items()
                                 if k in ("loss/total", "loss/sup", "loss/noise")} | {"lam": f"{lam:.3f}"})
                if first_log is None:
                    first_log = step
                last_log, tic = step, time.perf_counter()
                if max_run >= t.max_nonfinite:
                    save(step)
                    bar.close()
                    logger.close()
                    raise NoisedaError(
                        f"training stopped at step {step}: {max_run} non-finite losses in a row "
                        f"(checkpoint saved in {run_dir / 'checkpoints'}); lower train.lr or use mixed_precision=no"
                    )

            validating = step % t.val_every == 0 or step == t.steps
            checkpointing = step % t.checkpoint_every == 0 or step == t.steps
            if (validating or checkpointing) and accelerator.device.type == "cuda":
                torch.cuda.synchronize(accelerator.device)  # queued training work is training time
            paused = time.perf_counter()  # validation and checkpoints are not
            if validating:
                if main:
                    extra = {}
                    if val_images:
                        extra = validate_restorer(ema.net, val_images, value_range, cfg.task == "derain", accelerator.device)
                        extra.update(val_input)
                        settled = step >= max(t.steps // 10, cfg.method.diffusion_warmup_steps + ramp if uses_lambda else 0)
                        if settled and not warned_below_input and extra["val/psnr"] < val_input["val/input_psnr"]:
                            warned_below_input = True
                            bar.write(f"note: at step {step} the restorer (EMA) scores {extra['val/psnr']:.2f} dB on "
                                      f"the validation pairs, below their degraded inputs ({val_input['val/input_psnr']:.2f}"
                                      " dB): training is making these images worse")
                        if best is None or extra["val/psnr"] > best["val/psnr"]:
                            best = {"step": step, **extra}
                            export_restorer(run_dir / "best", ema.state_dict(), net_spec(cfg, step=step, weights="ema", **extra))
                    if evaluator is not None:
                        extra.update(evaluator(step, {"ema": ema.net, "raw": core.restorer}))
                    if monitor is not None:
                        ramped = step >= cfg.method.diffusion_warmup_steps + ramp  # lambda at its ceiling
                        probe, warning = monitor(step, ramped)
                        extra.update(probe)
                        if warning:
                            bar.write(f"note: {warning}")
                    if extra:
                        logger.log(step, extra)
                        bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in extra.items()))
                accelerator.wait_for_everyone()

            if checkpointing:
                save(step)
            tic += time.perf_counter() - paused

            if step < t.steps and stop.requested(accelerator, step, t.log_every):
                if not checkpointing:
                    save(step)
                bar.close()
                logger.close()
                raise TrainingInterrupted(f"{stop.name or 'stopped'} at step {step} of {t.steps}; checkpoint saved",
                                          f"noiseda train --out {shlex.quote(str(run_dir))} --resume")

    bar.close()
    summary = {"run_dir": str(run_dir), "steps": step, "best": best, "final": str(run_dir / "final"),
               "nonfinite_skipped": int(runner.nonfinite_total), "main_process": main}
    if main:
        export_restorer(run_dir / "final", ema.state_dict(), net_spec(cfg, step=step, weights="ema"))
        write_report(run_dir, summary, ema.net, val_images, value_range, accelerator.device)
    accelerator.wait_for_everyone()
    logger.close()
    accelerator.end_training()
    return summary


def method_lambda(cfg: Config, step: int, ramp: int) -> float:
    """lambda at a step; its ramp starts after the diffusion net's warm-up (0 by default)."""
    m = cfg.method
    return lambda_at(max(0, step - m.diffusion_warmup_steps), m.lambda_weight, m.lambda_slope, ramp)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class SlowdownWatch:
    """True once, when a step rate falls below a third of the best one seen so far."""

    def __init__(self):
        self.fastest, self.warned = 0.0, False

    def __call__(self, rate: float) -> bool:
        self.fastest = max(self.fastest, rate)
        if self.warned or rate >= self.fastest / 3:
            return False
        self.warned = True
        return True


def _slowdown_advice(device: torch.device) -> str:
    if device.type == "cpu":  # oversubscribed cores: measured 5-10x slower on a shared 2-core machine
        return (f"another process may be using the CPU cores ({torch.get_num_threads()} torch threads here): "
                "give each process its share with --threads (train.threads)")
    return "another process may be using this GPU, or the data loader may be starved"


def _loader_advice(cfg: Config) -> str:
    d = cfg.data
    advice = f"raise data.workers (now {d.workers})"
    if d.cache == "none":
        return advice + ", set data.cache=memory or disk, or cut large images into patches with `noiseda prepare`"
    if d.clean and d.degrade_on == "loader":
        return advice + ", or synthesise the degradation on the device (data.degrade_on=device)"
    return advice


class _TimedIterator:
    """Counts the seconds spent waiting for the next batch: with GPUs that work ahead of the
    host, that is time the GPU may sit idle (``train/data_wait``, a fraction of wall time)."""

    def __init__(self, iterable):
        self._it, self._seconds = iter(iterable), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        tic = time.perf_counter()
        try:
            return next(self._it)
        except (NoisedaError, OSError) as exc:  # from a loader worker, torch wraps it in a traceback report
            text = str(exc).strip()
            if "Original Traceback" in text:
                last = text.splitlines()[-1]
                raise NoisedaError(last.split("NoisedaError: ", 1)[-1] if "NoisedaError: " in last
                                   else f"in a data-loading worker: {last}") from None
            raise
        finally:
            self._seconds += time.perf_counter() - tic

    def take_seconds(self) -> float:
        seconds, self._seconds = self._seconds, 0.0
        return seconds


def _scaler_state(accelerator) -> dict | None:
    """fp16 loss-scaler state (plain numbers, so it fits in state.json)."""
    if accelerator.scaler is None:
        return None
    return {k: (v.item() if torch.is_tensor(v) else v) for k, v in accelerator.scaler.state_dict().items()}
