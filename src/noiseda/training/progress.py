"""What a run tells its user while it trains: metrics.jsonl and TensorBoard, time estimates,
and notes when it slows down or waits for data."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from noiseda.config import Config
from noiseda.errors import NoisedaError


class RunLog:
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


def duration(seconds: float) -> str:
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


def slowdown_advice(device: torch.device) -> str:
    if device.type == "cpu":  # oversubscribed cores: measured 5-10x slower on a shared 2-core machine
        return (f"another process may be using the CPU cores ({torch.get_num_threads()} torch threads here): "
                "give each process its share with --threads (train.threads)")
    return "another process may be using this GPU, or the data loader may be starved"


def loader_advice(cfg: Config) -> str:
    d = cfg.data
    advice = f"raise data.workers (now {d.workers})"
    if d.cache == "none":
        return advice + ", set data.cache=memory or disk, or cut large images into patches with `noiseda prepare`"
    if d.clean and d.degrade_on == "loader":
        return advice + ", or synthesise the degradation on the device (data.degrade_on=device)"
    return advice


class TimedIterator:
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




class RunNotes:
    """The notes a run writes beside its progress bar (main process only), each at most once:
    the time left, waiting for data, a slowdown, a restorer below its own inputs."""

    def __init__(self, write, main: bool, cfg: Config, device: torch.device):
        self.write = write if main else (lambda text: None)
        self.cfg, self.device = cfg, device
        self.intervals = 0  # log intervals of this session
        self.slowed, self.hinted, self.below_input = SlowdownWatch(), False, False
        self.stage = ""

    def after_interval(self, step: int, rate: float, waited: float, stage: str = "") -> None:
        """The first interval holds start-up (compiling, tuning, data workers): no note reads it.
        A method's new training stage has steps of another cost: the slowdown watch starts over."""
        self.intervals += 1
        if stage != self.stage:
            if self.stage:
                self.write(f"stage: {stage} from step {step}")
            self.stage, self.slowed = stage, SlowdownWatch()
        steps = self.cfg.train.steps
        if self.intervals < 2:
            return
        if waited > 0.3 and not self.hinted:
            self.hinted = True
            self.write(f"note: {waited:.0%} of the time went to waiting for training data; {loader_advice(self.cfg)}")
        if self.intervals == 2 and step < steps:
            self.write(f"{rate:.2f} steps/s: about {duration((steps - step) / rate)} for the {steps - step} steps "
                       "left (validation and checkpoints not included)")
        if self.slowed(rate):
            self.write(f"note: training slowed to {rate:.3g} steps/s from {self.slowed.fastest:.3g} earlier in this "
                       f"run; {slowdown_advice(self.device)}")

    def after_validation(self, step: int, settled_at: int, psnr: float, input_psnr: float) -> None:
        """Once training has settled, a restorer that scores below its own inputs is making
        these images worse."""
        if step >= settled_at and psnr < input_psnr and not self.below_input:
            self.below_input = True
            self.write(f"note: at step {step} the restorer (EMA) scores {psnr:.2f} dB on the validation pairs, below "
                       f"their degraded inputs ({input_psnr:.2f} dB): training is making these images worse")
