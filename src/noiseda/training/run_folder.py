"""A run's folder: what a run writes there, when it may start in it, and where it resumes from.

A fresh start never mixes its files with an earlier run's; the folder must not be, or hold, a
data folder; --overwrite deletes only what a run writes (RUN_FILES).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from noiseda.config import Config
from noiseda.data.adapters import split_spec
from noiseda.errors import NoisedaError
from noiseda.training.checkpoint import list_checkpoints, load_checkpoint


def check_run_dir(run_dir: Path, cfg: Config) -> None:
    """The run folder must not be, or hold, a data folder: runs never write among the inputs."""
    d = cfg.data
    specs = [*d.clean, *d.pairs_input, *d.pairs_target, *d.real, *d.reference, d.pairs, d.val_pairs]
    out = run_dir.resolve()
    for spec in filter(None, specs):
        folder = Path(split_spec(spec)[1].split("*")[0]).expanduser().resolve()
        if out == folder or folder.is_relative_to(out) or out.is_relative_to(folder):
            raise NoisedaError(f"output folder {run_dir} overlaps the data folder {spec}; choose another --out")


def truncate_jsonl(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


# What a run writes into its folder (scores.json: the sweep's): --overwrite deletes these, nothing else.
RUN_FILES = ("checkpoints", "tensorboard", "metrics.jsonl", "best", "final", "report", "report.md", "config.yaml",
             "monitor", "scores.json")


def earlier_run(run_dir: Path) -> list[Path]:
    return [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]


def delete_earlier_run(run_dir: Path) -> None:
    for path in earlier_run(run_dir):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> list[Path]:
    """The checkpoints to resume from ([] for a fresh start). A fresh start never mixes its logs
    with an earlier run's: a folder holding one needs --resume (if it has a checkpoint) or
    --overwrite, whose deletion waits until the new run's config and data have been checked."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NoisedaError(f"output folder {run_dir} is a file; choose another --out")
    checkpoints = list_checkpoints(run_dir)
    earlier = earlier_run(run_dir)
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


def newest_loadable(run_dir: Path, checkpoints: list[Path]) -> tuple[dict, list[str]]:
    """The newest checkpoint that loads, and why the newer ones did not (a file truncated by a
    full disk or a copy): one bad checkpoint costs its steps, not the run."""
    problems = []
    for path in reversed(checkpoints):
        try:
            return load_checkpoint(path), problems
        except NoisedaError as exc:
            problems.append(str(exc))
    raise NoisedaError(f"--resume: no checkpoint in {run_dir} can be loaded ({problems[0]})")
