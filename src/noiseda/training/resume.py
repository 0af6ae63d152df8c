"""What `train --resume` may change, and what it may not.

A resume continues from the run's last checkpoint with the run's own config.yaml, changed by
`-c` or `--set`. A change that only steers the rest of the run (how long, how fast it learns,
how often it logs, where its files are) is applied everywhere it matters and named in the log;
one that would make the checkpoint mean something else (the nets, the method, the data's
shape or degradation, the seed) is refused in one line, before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from noiseda.config import PATH_FIELDS, Config, absolute_paths, config_from_dict, config_to_dict
from noiseda.errors import NoisedaError

CHANGEABLE = frozenset({
    "train.steps", "train.lr", "train.diffusion_lr", "train.log_every", "train.val_every", "train.monitor",
    "train.checkpoint_every", "train.keep_checkpoints", "train.max_nonfinite", "train.threads", "train.compile",
    "train.mixed_precision", "train.channels_last",
    "data.cache", "data.workers", "data.val_max_images",
    *(f"{section}.{key}" for section, keys in PATH_FIELDS.items() for key in keys),
})
IGNORED = frozenset({"train.init"})  # where a run started: nothing to change once it has checkpoints


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "options":  # net.options is one value
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_changes(saved_config: Path, cfg: Config, method) -> list[tuple[str, Any, Any]]:
    """(key, value in the run, value now) for every key the resume changes; refuses the others.
    A run folder without config.yaml (deleted by hand) has nothing to compare against: []."""
    if not saved_config.is_file():
        return []
    try:
        saved = config_from_dict(yaml.safe_load(saved_config.read_text()) or {})
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise NoisedaError(f"--resume: {saved_config} is unreadable ({exc.__class__.__name__})") from None
    before = _flat(absolute_paths(config_to_dict(saved)))
    after = _flat(absolute_paths(config_to_dict(cfg)))
    changes = [(k, before[k], after[k]) for k in before if before[k] != after[k] and k not in IGNORED]
    refused = [c for c in changes if c[0] not in CHANGEABLE]
    # a rate whose change would split or merge the optimizer's parameter groups (the method's)
    lr_groups = [c for c in changes if c[0].startswith("train.") and c[0] != "train.lr" and c[0].endswith("lr")
                 and len(method.parameter_groups(saved.train)) != len(method.parameter_groups(cfg.train))]
    for key, old, new in refused + lr_groups:  # the first one is enough to act on
        others = len(refused + lr_groups) - 1
        more = f" (and {others} more key{'s' if others > 1 else ''})" if others else ""
        why = ("it would split or merge the optimizer's parameter groups" if key == "train.diffusion_lr"
               else "the checkpoint was trained with the old value")
        raise NoisedaError(f"--resume cannot change {key} from {old!r} to {new!r}{more}: {why}; "
                           "start a new run instead (another --out, or --init from this run's final/)")
    return changes


def apply_learning_rates(optimizer, groups: list[dict]) -> None:
    """The rates of the method's parameter ``groups`` (from this config) over those stored with
    the optimizer's state (a resume that changes train.lr must train at the new rate)."""
    for group, wanted in zip(optimizer.param_groups, groups):
        group["lr"] = wanted["lr"]
