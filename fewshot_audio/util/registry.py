"""One registry helper for every family of interchangeable parts (architectures, heads, detectors, ...): a
variant is a registered class, looked up by name; a name registered twice is a programming error and an unknown
name is a one-line :class:`~fewshot_audio.errors.ConfigError` listing the registered ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fewshot_audio.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one family (``kind`` names it in errors), in registration order.

    Examples
    --------
    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square: ...
    >>> shapes.get("square") is Square
    True
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._members: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that registers its class (or function) under ``name``."""

        def add(member: T) -> T:
            if name in self._members:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._members[name] = member
            return member

        return add

    def get(self, name: str) -> T:
        if name not in self._members:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self._members)}")
        return self._members[name]

    def names(self) -> list[str]:
        return list(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)
