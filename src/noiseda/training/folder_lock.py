"""One noiseda process per output folder.

Two `noiseda train` (or a `--resume` of a run that is still going) in one folder would both
append to `metrics.jsonl`, write two TensorBoard logs and overwrite each other's checkpoints;
two sweeps would train the same unfinished runs twice. The lock is an OS file lock (flock) on a
file in the folder that also records the holder's PID: the kernel drops the lock when its
process dies, so a lock left behind by a killed process is simply taken over.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from noiseda.errors import NoisedaError

RUN_LOCK = "run.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().split()[0]
    except (OSError, IndexError):
        return "another process"
    return f"another noiseda process (PID {pid})"


@contextmanager
def folder_lock(folder: Path, name: str = RUN_LOCK, hint: str = "wait for it to finish, or choose another --out"):
    """Hold `folder/name` for the body. A folder this call had to create, and that holds nothing
    but the lock when the body ends (a run refused before writing anything), is removed again."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    handle = open(path, "a+")  # never truncate: a holder's PID stays readable until we own the lock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise NoisedaError(f"{folder} is in use by {_holder(path)}; {hint}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {' '.join(sys.argv[:2])}\n")
        handle.flush()
        try:
            yield
        finally:
            if created and [p.name for p in folder.iterdir()] == [name]:
                path.unlink()
                folder.rmdir()
    finally:
        handle.close()
