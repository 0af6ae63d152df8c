"""Running a sweep: planning its runs, training them (in turn or in a process pool), and
writing the summary, tables and figure.

Only one sweep may work in a folder at a time (``SWEEP_LOCK``). Parallel runs go to fresh
spawned processes through `_worker`, which stays a module-level function so that the pool can
pickle it by name.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import yaml

from noiseda.errors import NoisedaError, TrainingInterrupted
from noiseda.experiments.sweep.figure import curves_figure
from noiseda.experiments.sweep.scoring import train_and_score
from noiseda.experiments.sweep.spec import Sweep, _comparable, run_config, run_dir
from noiseda.experiments.sweep.summary import summarize
from noiseda.experiments.sweep.tables import summary_markdown
from noiseda.training.folder_lock import folder_lock

SWEEP_LOCK = "sweep.lock"


def plan(sweep: Sweep, out: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(finished, to do), in seed-major order so that paired runs finish close together.
    A finished run must have been trained with this sweep's config for it."""
    from noiseda.config import config_from_dict, config_to_dict

    done, todo = [], []
    for seed in sweep.seeds:
        for variant in sweep.variants:
            run = run_dir(out, variant, seed)
            want = _comparable(config_to_dict(run_config(sweep, variant, seed)))
            saved = run / "config.yaml"
            if saved.is_file():
                # Read back through the config types: fields added since it was saved take their defaults.
                try:
                    have = _comparable(config_to_dict(config_from_dict(yaml.safe_load(saved.read_text()))))
                except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
                    raise NoisedaError(f"{saved}: unreadable ({exc.__class__.__name__}); delete that run") from None
                if have != want:
                    diff = _first_difference(have, want)
                    raise NoisedaError(f"{run} was trained with another config ({diff}); "
                                       "use a new --out, or delete that run")
            (done if (run / "scores.json").is_file() else todo).append((variant, seed))
    return done, todo


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}: {a!r} there, {b!r} now"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_sweep(sweep: Sweep, out: str | Path, jobs: int = 1, progress: bool = True,
              summary_only: bool = False, threads: int = 0) -> dict:
    out = Path(out)
    done, todo = plan(sweep, out)
    if not todo or summary_only:
        return _run_planned(sweep, out, done, todo, jobs, progress, summary_only, threads)
    # One sweep per folder: two would train the same unfinished runs at once.
    with folder_lock(out, SWEEP_LOCK, hint="wait for that sweep, or use another --out"):
        return _run_planned(sweep, out, done, todo, jobs, progress, summary_only, threads)


def _run_planned(sweep: Sweep, out: Path, done: list, todo: list, jobs: int, progress: bool,
                 summary_only: bool, threads: int = 0) -> dict:
    if summary_only:
        todo = []
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.yaml").write_text(yaml.safe_dump(sweep.as_file(), sort_keys=False))
        print(f"sweep: {len(done)} runs finished, {len(todo)} to run ({jobs} at a time)", file=sys.stderr)
    threads = threads or (max(1, usable_cores() // jobs) if jobs > 1 else 0)  # per run
    failures: list[str] = []
    if jobs > 1 and len(todo) > 1:
        failures = _run_parallel(sweep, out, todo, jobs, threads)
    else:
        for variant, seed in todo:
            print(f"sweep: {variant} seed {seed}", file=sys.stderr)
            train_and_score(sweep, out, variant, seed, threads, progress)
    if failures:
        raise NoisedaError(f"{len(failures)} runs failed, first: {failures[0]}")

    results = {}
    for variant in sweep.variants:
        for seed in sweep.seeds:
            path = run_dir(out, variant, seed) / "scores.json"
            if path.is_file():
                results[(variant, seed)] = json.loads(path.read_text())
    if not results:
        raise NoisedaError(f"{out}: no finished runs to summarise")
    summary = summarize(results, sweep)
    summary["sweep"] = sweep.as_file()
    from noiseda.data.io import write_atomic

    md = summary_markdown(summary, sweep, "psnr") + "\n" + summary_markdown(summary, sweep, "ssim")
    write_atomic(out / "summary.json", json.dumps(summary, indent=1).encode())
    write_atomic(out / "summary.md", md.encode())
    summary["figure"] = curves_figure(out, sweep, summary, out / "curves.png")
    summary["markdown"] = md
    return summary


def _run_parallel(sweep: Sweep, out: Path, todo: list, jobs: int, threads: int) -> list[str]:
    """The runs in a pool of ``jobs`` processes; returns the failed runs' error lines. Stopping:
    Ctrl-C reaches every process of the terminal's group; `kill` (SIGTERM) reaches this one
    only, and a sweep started in the background ignores SIGINT, so this process passes SIGTERM
    on to its workers. Either way the running runs save a checkpoint, no other run starts, and
    a worker stopped on its own stops the sweep too (TrainingInterrupted)."""
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
    from concurrent.futures import wait as futures_wait

    failures, interrupted = [], None
    kwargs = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), **kwargs) as pool:
        # At most `jobs` runs are handed to the pool at a time: a run queued inside the pool
        # could not be cancelled and would start after a Ctrl-C.
        waiting, running = iter(todo), set()

        def start_next() -> None:
            run = next(waiting, None)
            if run is not None and interrupted is None:
                running.add(pool.submit(_worker, (sweep, out, *run, threads)))

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
        try:
            for _ in range(jobs):
                start_next()
            while running:
                finished, _ = futures_wait(running, return_when=FIRST_COMPLETED)
                running -= finished
                for variant, seed, error, stopped in [future.result() for future in finished]:
                    print(f"sweep: {variant} seed {seed}: {error or 'done'}", file=sys.stderr)
                    if stopped:
                        interrupted = interrupted or f"{variant} seed {seed} was stopped ({error})"
                    elif error:
                        failures.append(f"{variant} seed {seed}: {error}")
                for _ in finished:  # after reading them all: a stopped one among them starts nothing
                    start_next()
        except KeyboardInterrupt:  # the running ones save a checkpoint and stop; start no others
            if main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second kill must not cut the shutdown short
            for process in list(getattr(pool, "_processes", {}).values()):  # the executor's workers
                process.terminate()  # SIGTERM: a run saves a checkpoint after its step (a copy of a Ctrl-C it already had is ignored)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
    if interrupted:
        raise TrainingInterrupted(f"sweep stopped: {interrupted}", resume="the same sweep command")
    return failures


def _worker(args) -> tuple[str, int, Optional[str], bool]:
    """One run in a fresh process (parallel sweeps); returns an error line instead of raising,
    and whether the run was stopped by a signal (it saved a checkpoint)."""
    sweep, out, variant, seed, threads = args
    try:
        train_and_score(sweep, out, variant, seed, threads, progress=False)
        return variant, seed, None, False
    except TrainingInterrupted as exc:
        return variant, seed, exc.what, True
    except NoisedaError as exc:
        return variant, seed, str(exc), False
    except Exception as exc:  # one failed run must not take the others down; it is named below
        return variant, seed, f"{type(exc).__name__}: {exc}", False
