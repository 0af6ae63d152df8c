"""Name -> builder registries, the project's extension points."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from noiseda.errors import NoisedaError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return add

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._builders:
            close = difflib.get_close_matches(name, self._builders, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise NoisedaError(
                f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self._builders))}){hint}"
            )
        return self._builders[name]

    def build(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a throwaway entry clean up with this)."""
        self._builders.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders
