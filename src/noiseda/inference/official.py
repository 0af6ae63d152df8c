"""Import the authors' released checkpoints: their ``Network`` state dict -> our restorer folder.

Their restorer keys are ``RestorationNet.down_path.{i}.block.{0,2}.*``,
``RestorationNet.up_path.{i}.conv_up.*``, ``RestorationNet.up_path.{i}.conv_block.block.{0,2}.*``
and ``RestorationNet.last.*``; the same U-Net as ours, with one more ``block`` level in the
names. Their diffusion net (``denoise_fn.*``) is dropped. Files are read with
``weights_only=True``: a pickle that would run code is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from noiseda.inference.export import export_restorer, fit_problems, restorer_spec, safe_torch_load
from noiseda.errors import NoisedaError
from noiseda.nets import build_net

PREFIX = "RestorationNet."
# Their models' input ranges: denoising in [0, 1], deraining and deblurring in [-1, 1].
VALUE_RANGES = {"denoise": [0.0, 1.0], "derain": [-1.0, 1.0], "deblur": [-1.0, 1.0]}
NAMED_WIDTHS = {32: "unet-t", 64: "unet-s", 76: "unet-b"}


def _find_state(obj, source: Path) -> dict:
    """The dict holding RestorationNet.* keys: the file itself or one level down (state_dict, ...)."""
    candidates = [obj] + ([v for v in obj.values() if isinstance(v, dict)] if isinstance(obj, dict) else [])
    for cand in candidates:
        keys = [k for k in cand if isinstance(k, str)]
        if any(k.removeprefix("module.").startswith(PREFIX) for k in keys):
            return {k.removeprefix("module."): v for k, v in cand.items()}
    raise NoisedaError(f"{source}: no {PREFIX}* weights found (is this a checkpoint of the authors' Network?)")


def convert_state(state: dict) -> dict[str, torch.Tensor]:
    """Their restorer keys -> ours; everything else (the diffusion net) is dropped."""
    out = {}
    for key, value in state.items():
        if not key.startswith(PREFIX):
            continue
        k = key[len(PREFIX):]
        k = re.sub(r"^(down_path\.\d+)\.block\.", r"\1.", k)
        k = re.sub(r"^(up_path\.\d+\.conv_block)\.block\.", r"\1.", k)
        out[k] = value
    return out


def import_official(ckpt: str, task: str, out_dir: str) -> Path:
    if task not in VALUE_RANGES:
        raise NoisedaError(f"--task: expected one of {', '.join(VALUE_RANGES)}, got {task!r}")
    source = Path(ckpt).expanduser()
    if not source.is_file():
        raise NoisedaError(f"checkpoint not found: {source}")
    out = Path(out_dir)
    if out.resolve() == source.resolve().parent or out.exists() and any(out.iterdir()):
        raise NoisedaError(f"output folder {out} exists and is not empty; choose another --out")
    obj = safe_torch_load(source)
    state = convert_state(_find_state(obj, source))
    first = state.get("down_path.0.0.weight")
    if first is None:
        raise NoisedaError(f"{source}: {PREFIX}down_path.0.block.0.weight missing")
    width = int(first.shape[0])
    name = NAMED_WIDTHS.get(width, "unet")
    kwargs = {} if name != "unet" else {"width": width}
    net = build_net(name, **kwargs)
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise NoisedaError(f"{source}: weights do not fit {name}: {fit_problems(net, state)}") from None
    spec = restorer_spec(name, kwargs, VALUE_RANGES[task], task, "official", source=str(source))
    return export_restorer(out, {k: v.contiguous() for k, v in net.state_dict().items()}, spec)
