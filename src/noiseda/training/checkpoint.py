"""Training checkpoints that survive kills.

A checkpoint is a folder ``checkpoints/step-00001000/`` written as
``.tmp-step-00001000/`` first; its ``manifest.json`` is written last and the
folder is renamed into place only when complete. Old checkpoints are deleted
only after the new one is in place. Loading never unpickles code: tensors
are safetensors, the optimizer state goes through ``torch.load(...,
weights_only=True)``.
The exported restorer (what users get) is inference/export.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from noiseda.errors import NoisedaError
from noiseda.inference.export import publish_folder, safe_torch_load, save_tensors, write_json

MANIFEST = "manifest.json"


def save_checkpoint(
    run_dir: Path,
    step: int,
    tensors: dict[str, dict[str, torch.Tensor]],
    optimizer_state: dict,
    state: dict,
    keep: int,
) -> Path:
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for key, sd in tensors.items():
            save_tensors(tmp / f"{key}.safetensors", sd)
        torch.save(optimizer_state, tmp / "optimizer.pt")
        write_json(tmp / "state.json", state)
        write_json(tmp / MANIFEST, {"step": step, "files": sorted(p.name for p in tmp.iterdir())})
        publish_folder(tmp, root / name)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NoisedaError(f"could not write checkpoint {root / name}: {exc.strerror or exc}") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (those with a manifest), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if (p / MANIFEST).is_file()]
    return sorted(done, key=lambda p: p.name)


def checkpoint_step(path: Path) -> int:
    """The training step a checkpoint folder (``step-00001000``) was saved at."""
    return int(Path(path).name.removeprefix("step-"))


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise NoisedaError(f"not a complete checkpoint: {path}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        out = {
            key.removesuffix(".safetensors"): load_file(str(path / key))
            for key in manifest["files"]
            if key.endswith(".safetensors")
        }
        out["state"] = json.loads((path / "state.json").read_text())
    except Exception as exc:
        raise NoisedaError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0]}") from None
    try:
        out["optimizer"] = safe_torch_load(path / "optimizer.pt")
    except NoisedaError as exc:
        raise NoisedaError(f"cannot load checkpoint {path}: {exc}") from None
    return out


