"""Typed configuration: YAML in, dataclasses out, unknown keys and wrong types rejected.

Every field below is documented in docs/config.md. A run saves
its fully resolved config (``config.yaml``) so that it can be repeated.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from noiseda.data.adapters import split_spec
from noiseda.errors import NoisedaError
from noiseda.methods import METHODS, check_method_config
from noiseda.nets import NETS
from noiseda.typed import read_dataclass

PACKAGED_CONFIGS = Path(__file__).parent / "configs"


@dataclass
class NetConfig:
    name: str = "unet-s"  # registered restoration net (see `noiseda nets`)
    width: int = 0  # base width for nets that take one (e.g. "unet"); 0: the net's default
    # further keyword arguments of the net's builder, e.g. {enc_blocks: [2, 2, 4, 8], middle_blocks: 12}
    options: dict = field(default_factory=dict)
    zero_init_last: bool = False  # start as the identity (deviation from the reference init)


@dataclass
class DiffusionConfig:
    base_width: int = 64
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    layers_per_block: int = 2  # encoder; the decoder gets one more, as in guided diffusion
    attention: bool = True  # one self-attention block in the bottleneck
    attention_head_dim: int = 32
    norm_groups: int = 32
    dropout: float = 0.2
    beta_start: float = 1e-6
    beta_end: float = 1e-2
    num_timesteps: int = 1000


@dataclass
class MethodConfig:
    name: str = "noise-da"  # a registered method (see `noiseda methods`)
    # lambda: the weight of the method's adaptation term (what it weighs: `noiseda methods`), on a
    # DANN-style ramp lambda_weight * (2 / (1 + exp(-lambda_slope * p)) - 1) over lambda_ramp_steps.
    # Unset (null): the method's own default (noise-da 0.2, 5, 300 passes; DANN's 1, 10, the whole
    # run); a run's config.yaml records the values used.
    lambda_weight: Optional[float] = None
    lambda_slope: Optional[float] = None
    lambda_ramp_steps: Optional[int] = None  # 0: 300 passes over the synthetic set, as in the reference
    charbonnier_eps: float = 1e-3  # of the supervised loss
    # each method's own settings, by method name: {noise-da: {t_range: [1, 999]}, dann: {...}};
    # the chosen method's are used (its Options in its file under noiseda/methods; docs/config.md)
    options: dict = field(default_factory=dict)


# Keys of the method section before each method had its own options (config.yaml of earlier
# runs, --set of earlier commands): moved into method.options.<name> where the method has them.
_FLAT_METHOD_KEYS = {"t_range": "t_range", "channel_shuffle": "channel_shuffle", "residual_swap": "residual_swap",
                     "condition": "condition", "margin": "margin", "diffusion_warmup_steps": "diffusion_warmup_steps",
                     "warmup_freezes_restorer": "warmup_freezes_restorer", "features": "features",
                     "ne2ne_gamma": "gamma", "mask_ratio": "mask_ratio"}


@dataclass
class DataConfig:
    value_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # [0,1] denoise, [-1,1] rain/blur
    # Synthetic side: either clean images + a synthetic degradation, or ready pairs.
    clean: list[str] = field(default_factory=list)  # folders, files or globs
    degradation: str = "awgn"
    sigma_range: list[float] = field(default_factory=lambda: [0.0, 75.0])  # AWGN sigma in /255 units
    degrade_on: str = "loader"  # loader: per image in the data workers | device: per batch where training runs
    pairs: Optional[str] = None  # a folder with degraded + clean subfolders (noisy/ + clean/, ...)
    pairs_input: list[str] = field(default_factory=list)  # or: degraded images (folders or globs)
    pairs_target: list[str] = field(default_factory=list)  # their ground truth, same file names
    real: list[str] = field(default_factory=list)  # unlabeled real degraded images
    reference: list[str] = field(default_factory=list)  # unpaired clean images (noise-da-ex); default: clean/targets
    val_pairs: Optional[str] = None  # folder with input/target subfolders (e.g. noisy/ clean/)
    val_max_images: int = 0  # 0: all
    patch_size: int = 128
    cache: str = "memory"  # memory | disk (memory-mapped decoded files, for big sets) | none
    workers: int = 0


@dataclass
class TrainConfig:
    steps: int = 100000
    batch_size: int = 40
    lr: float = 1e-4
    diffusion_lr: float = 0.0  # the diffusion net's own learning rate; 0: train.lr (the reference)
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    ema_decay: float = 0.9999
    ema_warmup: bool = True  # decay = min(d, (1+n)/(10+n)); not in the reference, helps short runs
    mixed_precision: str = "auto"  # auto (bf16 on GPUs that have it, else no) | no | bf16 | fp16
    channels_last: Optional[bool] = None  # the restorer's layout; None: channels-last on GPUs and CPUs
    compile: bool = False  # torch.compile the nets (falls back to eager where compiling fails)
    seed: int = 0
    log_every: int = 10
    val_every: int = 1000
    monitor: bool = True  # noise-da: the shortcut monitor on a fixed probe batch at every validation step
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    max_nonfinite: int = 5  # consecutive non-finite losses before training stops
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default
    # Start the restorer from trained weights instead of a random init: an exported folder
    # (restorer.safetensors + net.json), a run folder (its final/, else best/) or the output of
    # `noiseda import-official`. The net must match net.name/net.width/net.options.
    init: Optional[str] = None


@dataclass
class Config:
    task: str = "denoise"  # denoise | derain | deblur (recorded in exported models)
    net: NetConfig = field(default_factory=NetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _upgrade(data: dict) -> dict:
    """Values written by earlier versions (``data.cache`` was a bool: true memory, false none;
    method options were keys of the method section), and YAML 1.1's bare ``no`` (false) for
    ``train.mixed_precision``."""
    if not isinstance(data, dict):
        return data
    d, t, m = (data.get(k) for k in ("data", "train", "method"))
    if isinstance(d, dict) and isinstance(d.get("cache"), bool):
        data = {**data, "data": {**d, "cache": "memory" if d["cache"] else "none"}}
    if isinstance(t, dict) and t.get("mixed_precision") is False:
        data = {**data, "train": {**t, "mixed_precision": "no"}}
    if isinstance(m, dict) and _FLAT_METHOD_KEYS.keys() & m.keys():
        data = {**data, "method": _upgrade_method(m)}
    return data


def _upgrade_method(m: dict) -> dict:
    name = m.get("name", MethodConfig.name)
    fields = ({f.name for f in dataclasses.fields(METHODS.get(name).Options)}
              if isinstance(name, str) and name in METHODS else set())
    options = dict(m.get("options") or {})
    own = dict(options.get(name) or {}) if isinstance(name, str) else {}
    out = {k: v for k, v in m.items() if k not in _FLAT_METHOD_KEYS}
    for old, new in _FLAT_METHOD_KEYS.items():
        if old in m and new in fields:  # another method's option had no effect on this one
            own.setdefault(new, m[old])
    if fields:  # options added since then default to the new recipe; such a config keeps the old one
        own = {**METHODS.get(name).earlier_behaviour, **own}
    if own:
        options[name] = own
    return {**out, "options": options}


def config_from_dict(data: dict) -> Config:
    cfg = read_dataclass(Config, _upgrade(data or {}), "")
    validate(cfg)
    return cfg


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A path, or the name of a packaged config (``denoise``, ``tiny-cpu``, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = PACKAGED_CONFIGS / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    known = ", ".join(packaged_configs())
    raise NoisedaError(f"config file not found: {name_or_path} (packaged configs: {known})")


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise NoisedaError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_config(name_or_path: Optional[str], overrides: list[str] = ()) -> Config:
    data: dict = {}
    if name_or_path:
        path = resolve_config_path(name_or_path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise NoisedaError(f"config {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    for item in overrides:
        keys, value = _parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise NoisedaError(f"--set {item}: {k!r} is not a section")
        node[keys[-1]] = value
    return config_from_dict(data)


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


# Fields that name files or folders. A run's config.yaml stores them absolute, so that a resume,
# a probe or a report works from any working directory.
PATH_FIELDS = {"data": ("clean", "pairs_input", "pairs_target", "real", "reference", "pairs", "val_pairs"),
               "train": ("init",)}


def absolute_paths(cfg_dict: dict) -> dict:
    """A copy of a config dict with every path field absolute (dataset specs keep their prefix)."""
    def absolute(spec: str) -> str:
        adapter, path = split_spec(spec)
        path = os.path.abspath(os.path.expanduser(path))
        return f"{adapter}:{path}" if adapter else path

    out = copy.deepcopy(cfg_dict)
    for section, keys in PATH_FIELDS.items():
        for key in keys:
            value = out.get(section, {}).get(key)
            if isinstance(value, list):
                out[section][key] = [absolute(v) for v in value]
            elif value:
                out[section][key] = absolute(value)
    return out


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(absolute_paths(config_to_dict(cfg)), sort_keys=False))


def validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express; the method's options are checked by
    the method (its Options and check_config) and recorded in full."""
    for what, registry, name in (("method.name", METHODS, cfg.method.name), ("net.name", NETS, cfg.net.name)):
        try:
            registry.get(name)
        except NoisedaError as exc:
            raise NoisedaError(f"config {what}: {exc}") from None
    reserved = {"width", "name", "zero_init_last"} & set(cfg.net.options)
    if reserved:
        raise NoisedaError(f"config net.options.{sorted(reserved)[0]}: set it as net.{sorted(reserved)[0]} instead")
    cfg.method.options = check_method_config(cfg)
    d, t, dif = cfg.data, cfg.train, cfg.diffusion
    if len(d.value_range) != 2 or d.value_range[0] >= d.value_range[1]:
        raise NoisedaError(f"config data.value_range: expected [low, high], got {d.value_range}")
    if len(d.sigma_range) != 2 or not (0 <= d.sigma_range[0] <= d.sigma_range[1]):
        raise NoisedaError(f"config data.sigma_range: expected [min, max] >= 0, got {d.sigma_range}")
    if d.degrade_on not in ("loader", "device"):
        raise NoisedaError(f"config data.degrade_on: expected loader|device, got {d.degrade_on!r}")
    if d.cache not in ("memory", "disk", "none"):
        raise NoisedaError(f"config data.cache: expected memory|disk|none, got {d.cache!r}")
    if d.degrade_on == "device" and not d.clean:
        raise NoisedaError("config data.degrade_on=device degrades data.clean images: set data.clean")
    if d.patch_size < 8 or d.patch_size % 8:
        raise NoisedaError(f"config data.patch_size: expected a multiple of 8, got {d.patch_size}")
    if t.mixed_precision not in ("auto", "no", "bf16", "fp16"):
        raise NoisedaError(f"config train.mixed_precision: expected auto|no|bf16|fp16, got {t.mixed_precision!r}")
    for name in ("steps", "batch_size", "log_every", "val_every", "checkpoint_every", "keep_checkpoints"):
        if getattr(t, name) < 1:
            raise NoisedaError(f"config train.{name}: expected >= 1, got {getattr(t, name)}")
    if not (0.0 <= t.ema_decay < 1.0):
        raise NoisedaError(f"config train.ema_decay: expected 0 <= decay < 1, got {t.ema_decay}")
    if t.lr <= 0:
        raise NoisedaError(f"config train.lr: expected > 0, got {t.lr}")
    if t.diffusion_lr < 0:
        raise NoisedaError(f"config train.diffusion_lr: expected >= 0 (0: train.lr), got {t.diffusion_lr}")
    if dif.base_width % dif.norm_groups:
        raise NoisedaError("config diffusion.base_width must be a multiple of diffusion.norm_groups")
