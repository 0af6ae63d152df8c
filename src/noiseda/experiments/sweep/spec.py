"""The sweep file and what it fixes for each run.

Holds the `Sweep` dataclass, the sweep file parser (`load_sweep`, with ``$VAR`` expansion from
the environment), the checks shared by the commands that build sweeps, and each run's
resolved config and folder. Everything here is cheap (no torch), so parsing a sweep file and
planning its runs stay fast.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from noiseda.errors import NoisedaError

SWEEP_KEYS = {"config", "set", "seeds", "reference", "oracle", "oracle_test_sets", "eval_every", "test_sets",
              "variants"}
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass
class Sweep:
    config: Optional[str]  # base training config: packaged name or YAML path
    overrides: list[str]  # shared by every run
    seeds: list[int]
    reference: str
    eval_every: int
    test_sets: dict[str, str]  # name -> pairs folder (or ADAPTER:PATH)
    variants: dict[str, list[str]]  # name -> overrides
    # A variant trained on the real domain's own pairs (the upper bound): tables gain "gap
    # closed", (variant - reference) / (oracle - reference).
    oracle: Optional[str] = None
    # The test sets of the oracle's own domain (an oracle of one domain bounds nothing on
    # another); None: every test set.
    oracle_test_sets: Optional[list[str]] = None

    def gap_sets(self) -> list[str]:
        """The test sets that get a "gap closed" column."""
        if not self.oracle:
            return []
        return [t for t in self.test_sets if self.oracle_test_sets is None or t in self.oracle_test_sets]

    def as_file(self) -> dict:
        """The sweep as a file would state it, variables expanded (saved beside the runs)."""
        return {"config": self.config, "set": self.overrides, "seeds": self.seeds, "reference": self.reference,
                **({"oracle": self.oracle} if self.oracle else {}),
                **({"oracle_test_sets": self.oracle_test_sets} if self.oracle_test_sets is not None else {}),
                "eval_every": self.eval_every, "test_sets": self.test_sets, "variants": self.variants}


def check_seeds_and_tests(seeds: list[int], test_sets: dict[str, str], command: str) -> None:
    """What every sweep-building command checks of its seeds and test sets."""
    if not test_sets:
        raise NoisedaError(f"{command} needs at least one --test-set NAME=PAIRS")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise NoisedaError(f"--seeds: expected distinct non-negative integers, got {seeds}")


def _expand(value: str, where: str) -> str:
    """$VAR / ${VAR} from the environment, so sweep files name data by a variable (DATA=...)."""

    def sub(m):
        if m.group(1) not in os.environ:
            raise NoisedaError(f"sweep {where}: environment variable {m.group(1)} is not set (in {value!r})")
        return os.environ[m.group(1)]

    return _VAR.sub(sub, value)


def _str_list(value, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NoisedaError(f"sweep {where}: expected a list of KEY=VALUE strings, got {value!r}")
    return [_expand(v, where) for v in value]


def load_sweep(path: str | Path, extra_overrides: list[str] = (), seeds: Optional[list[int]] = None) -> Sweep:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise NoisedaError(f"sweep file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoisedaError(f"cannot read sweep file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise NoisedaError(f"sweep file {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise NoisedaError(f"sweep file {path}: expected a mapping of {', '.join(sorted(SWEEP_KEYS))}")
    unknown = set(data) - SWEEP_KEYS
    if unknown:
        raise NoisedaError(f"sweep file {path}: unknown key {sorted(unknown)[0]!r} "
                           f"(known: {', '.join(sorted(SWEEP_KEYS))})")
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise NoisedaError(f"sweep file {path}: 'variants' must map names to lists of overrides")
    for name in variants:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise NoisedaError(f"sweep file {path}: variant name {name!r} must be letters, digits, _ . + -")
    seeds = list(seeds) if seeds else data.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise NoisedaError(f"sweep file {path}: 'seeds' must be a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise NoisedaError(f"sweep file {path}: 'seeds' repeats a seed: {seeds}")
    reference = data.get("reference", next(iter(variants)))
    if reference not in variants:
        raise NoisedaError(f"sweep file {path}: reference {reference!r} is not a variant")
    oracle = data.get("oracle")
    if oracle is not None and (oracle not in variants or oracle == reference):
        raise NoisedaError(f"sweep file {path}: oracle {oracle!r} must be a variant other than the reference")
    oracle_sets = data.get("oracle_test_sets")
    every = data.get("eval_every", 0)
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise NoisedaError(f"sweep file {path}: 'eval_every' must be an integer >= 0 (0: at the end only)")
    tests = data.get("test_sets")
    if not isinstance(tests, dict) or not tests or not all(isinstance(v, str) for v in tests.values()):
        raise NoisedaError(f"sweep file {path}: 'test_sets' must map names to folders of pairs")
    config = data.get("config")
    if config is not None and not isinstance(config, str):
        raise NoisedaError(f"sweep file {path}: 'config' must be a config name or path")
    return Sweep(
        config=_expand(config, "config") if config else None,
        overrides=_str_list(data.get("set"), "set") + list(extra_overrides),
        seeds=seeds,
        reference=reference,
        eval_every=every,
        test_sets={str(k): _expand(v, f"test_sets.{k}") for k, v in tests.items()},
        variants={str(k): _str_list(v, f"variants.{k}") for k, v in variants.items()},
        oracle=oracle,
        oracle_test_sets=_oracle_sets(oracle_sets, oracle, tests, path),
    )


def _oracle_sets(value, oracle, tests: dict, path) -> Optional[list[str]]:
    if value is None:
        return None
    if not oracle:
        raise NoisedaError(f"sweep file {path}: 'oracle_test_sets' needs an 'oracle'")
    if not isinstance(value, list) or not value or any(v not in tests for v in value):
        raise NoisedaError(f"sweep file {path}: 'oracle_test_sets' must list test sets of 'test_sets', got {value!r}")
    return [str(v) for v in value]


def run_config(sweep: Sweep, variant: str, seed: int, threads: int = 0):
    """The resolved config of one run; a run's own overrides come after the shared ones."""
    from noiseda.config import load_config, validate

    extra = [f"train.seed={seed}"] + ([f"train.threads={threads}"] if threads else [])
    if sweep.eval_every:
        extra.append(f"train.val_every={sweep.eval_every}")
    cfg = load_config(sweep.config, sweep.overrides + sweep.variants[variant] + extra)
    validate(cfg)
    return cfg


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / variant / f"seed-{seed}"


def _comparable(cfg_dict: dict) -> dict:
    """What must match for a finished run to count as this sweep's run (threads may differ;
    paths are compared absolute, as runs store them)."""
    from noiseda.config import absolute_paths

    d = absolute_paths(cfg_dict)
    d["train"].pop("threads", None)
    return d
