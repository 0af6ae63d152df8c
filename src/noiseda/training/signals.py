"""Stopping a run cleanly: the first Ctrl-C or SIGTERM finishes the step and saves a checkpoint."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Optional

import torch


class StopSignals:
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


def ignore_stop_signals(worker_id: int) -> None:
    """Data-loader workers leave Ctrl-C and SIGTERM to the training process, which still needs
    them to finish its step; they exit when it closes the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
