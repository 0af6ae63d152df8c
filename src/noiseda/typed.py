"""Plain data (parsed YAML, --set values) into typed dataclasses: wrong types and unknown keys
are refused in one line that names the key, with a close-name suggestion."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from noiseda.errors import NoisedaError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and item is str:
            value = [value]  # a single path is a list of one
        if not isinstance(value, (list, tuple)):
            raise NoisedaError(f"config {where}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return read_dataclass(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if tp is dict and isinstance(value, dict) and not all(isinstance(k, str) for k in value):
        raise NoisedaError(f"config {where}: expected names as keys, got {value!r}")
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise NoisedaError(f"config {where}: expected {_type_name(tp)}, got {value!r}")
    return value


def read_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise NoisedaError(f"config {where or 'file'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise NoisedaError(f"unknown config key {path!r}{hint}")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)
