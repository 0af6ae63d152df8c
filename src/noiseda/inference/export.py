"""The exported restorer: the one artefact a run hands to users.

An exported restorer is a folder with ``restorer.safetensors`` (weights only, never a
method's training-only nets) and ``net.json`` (architecture, input value range, task),
everything ``restore`` and ``evaluate`` need. Folders are written under a temporary name
and renamed into place when complete, so a kill never leaves half an export.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from noiseda import __version__
from noiseda.data.io import file_mode
from noiseda.errors import NoisedaError

if TYPE_CHECKING:
    from noiseda.config import Config


NET_JSON = "net.json"


RESTORER_FILE = "restorer.safetensors"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
    with open(path, "rb+") as f:
        os.fchmod(f.fileno(), file_mode())  # safetensors creates 0600 files
        os.fsync(f.fileno())


def publish_folder(tmp: Path, final: Path) -> None:
    """Rename a completed temporary folder into place, replacing an older one of the same name."""
    fsync_dir(tmp)
    if final.exists():
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def export_restorer(out_dir: Path, state_dict: dict[str, torch.Tensor], spec: dict) -> Path:
    """Write restorer.safetensors + net.json into ``out_dir`` atomically (as one folder)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tmp / RESTORER_FILE, state_dict)
    write_json(tmp / NET_JSON, spec)
    publish_folder(tmp, out_dir)
    return out_dir


def resolve_weights(weights: str | Path) -> Path:
    """An exported folder, its restorer.safetensors, or a run folder (final/, else best/)."""
    p = Path(weights).expanduser()
    if p.is_file():
        p = p.parent
    if not p.exists():
        raise NoisedaError(f"weights not found: {weights}")
    for cand in (p, p / "final", p / "best"):
        if (cand / NET_JSON).is_file() and (cand / RESTORER_FILE).is_file():
            return cand
    raise NoisedaError(f"no {RESTORER_FILE} + {NET_JSON} in {weights} (give an exported model or a run folder)")


def fit_problems(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """Why ``state`` does not load into ``net``, in one line: missing, unexpected and reshaped keys."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shaped:
        k = shaped[0]
        parts.append(f"{len(shaped)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                     f"{tuple(own[k].shape)} in the net)")
    return "; ".join(parts) or "keys and shapes match"


def load_restorer(weights: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    from noiseda.inference.per_image import PerImage
    from noiseda.nets import build_net

    if isinstance(weights, PerImage):  # no weights: an optimisation per image
        net, spec = weights.build()
        return net.to(device), spec
    folder = resolve_weights(weights)
    try:
        spec = json.loads((folder / NET_JSON).read_text())
        net = build_net(spec["net"], **spec.get("kwargs", {}))
        state = load_file(str(folder / RESTORER_FILE))
    except NoisedaError:
        raise
    except Exception as exc:
        raise NoisedaError(f"cannot load restorer from {folder}: {str(exc).splitlines()[0]}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise NoisedaError(f"cannot load restorer from {folder}: its weights do not fit the net in {NET_JSON} "
                           f"({spec['net']}, {spec.get('kwargs', {})}): {fit_problems(net, state)}") from None
    return net.to(device).eval(), spec


def init_restorer(net: torch.nn.Module, weights: str | Path, spec: dict) -> Path:
    """Load trained weights into ``net`` (``train.init``), after checking that they were trained
    for the same net, size and value range as this run's ``spec`` (see train.net_spec).
    Returns the folder they came from."""
    try:
        folder = resolve_weights(weights)
        theirs = json.loads((folder / NET_JSON).read_text())
        state = load_file(str(folder / RESTORER_FILE))
    except NoisedaError as exc:
        raise NoisedaError(f"train.init: {exc}") from None
    except Exception as exc:
        raise NoisedaError(f"train.init: cannot read {weights}: {str(exc).splitlines()[0]}") from None
    mine = json.loads(json.dumps({k: spec[k] for k in ("net", "kwargs", "value_range")}))  # as JSON stores it
    for key, value in mine.items():
        if key in theirs and theirs[key] != value:
            raise NoisedaError(f"train.init: {folder} holds a restorer with {key} {theirs[key]}, this run trains "
                               f"{key} {value}; set the run's net.* (and data.value_range) to match")
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise NoisedaError(f"train.init: the weights in {folder} do not fit this run's net: "
                           f"{fit_problems(net, state)}") from None
    return folder


def net_kwargs(cfg: Config) -> dict:
    return ({"width": cfg.net.width} if cfg.net.width else {}) | dict(cfg.net.options)


def restorer_spec(net: str, kwargs: dict, value_range, task: str, method: str, **extra) -> dict:
    """net.json: what rebuilds the restorer (net, kwargs) and how to feed it (value range, task)."""
    return {"format": "noiseda-restorer/1", "net": net, "kwargs": kwargs, "value_range": list(value_range),
            "task": task, "method": method, "noiseda_version": __version__, **extra}


def net_spec(cfg: Config, **extra) -> dict:
    """The spec of the restorer a run with config ``cfg`` trains."""
    return restorer_spec(cfg.net.name, net_kwargs(cfg), cfg.data.value_range, cfg.task, cfg.method.name, **extra)


def safe_torch_load(path: Path) -> Any:
    """torch.load(weights_only=True) whose failure is one honest line. Torch's own message for a
    refused file advises weights_only=False, which is exactly what a user must not do with a file
    that holds code; a corrupt file reads as refused for code too. Neither is repeated here."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise NoisedaError(f"{path}: refused: it holds a Python object ({unsafe.group(1)}) whose loading "
                               "could run code; only tensors and plain containers are loaded") from None
        raise NoisedaError(f"{path}: not a readable PyTorch file (corrupt, truncated or another format)") from None
