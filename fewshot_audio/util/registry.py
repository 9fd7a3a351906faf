"""One registry helper for every family of interchangeable parts (strategies, backbones, heads, front ends,
dataset layouts, detector parts, pretrained models, ...): a variant is a registered member, looked up by name; a
name registered twice is a programming error, and an unknown name is a one-line
:class:`~fewshot_audio.errors.ConfigError` listing the registered ones and the closest match."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fewshot_audio.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one family (``kind`` names it in errors), in registration order.

    ``base``, when given, is the family's interface: a class registered that does not derive from it (or an
    instance that is not one) is refused when it is registered.

    Examples
    --------
    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square:
    ...     '''Four equal sides.'''
    >>> shapes.get("square") is Square
    True
    >>> shapes.describe()
    {'square': 'Four equal sides.'}
    >>> shapes.get("sqare")
    Traceback (most recent call last):
    ...
    fewshot_audio.errors.ConfigError: unknown shape 'sqare' (did you mean 'square'?); registered: square
    """

    def __init__(self, kind: str, *, base: type | None = None):
        self.kind = kind
        self.base = base
        self.module = sys._getframe(1).f_globals.get("__name__", "")  # the family's module (tests find them all)
        self._members: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """A decorator that registers its class (or function) under ``name`` (default: its ``name`` attribute)."""

        def add(member: T) -> T:
            return self.add(name if name is not None else member.name, member)

        return add

    def add(self, name: str, member: T) -> T:
        """Register ``member`` under ``name`` and return it (for members that are instances, not classes)."""
        if name in self._members:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if self.base is not None and not _is_a(member, self.base):
            raise TypeError(f"{self.kind} {name!r} ({member!r}) does not implement {self.base.__name__}")
        self._members[name] = member
        return member

    def get(self, name: str) -> T:
        """The member registered as ``name``; an unknown name raises :class:`ConfigError` naming the closest one."""
        if name not in self._members:
            raise ConfigError(self.unknown(name))
        return self._members[name]

    def unknown(self, name: str) -> str:
        """The one-line message for an unknown ``name``: the registered names and the closest match."""
        close = difflib.get_close_matches(str(name), self._members, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; registered: {', '.join(self._members)}"

    def copy(self) -> Registry[T]:
        """A registry of the same family holding the same members (tests register temporary members in one)."""
        other: Registry[T] = Registry(self.kind, base=self.base)
        other.module, other._members = self.module, dict(self._members)
        return other

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._members)

    def items(self) -> list[tuple[str, T]]:
        """``(name, member)`` pairs, in registration order."""
        return list(self._members.items())

    def describe(self) -> dict[str, str]:
        """Each name and the first line of its member's docstring (for ``--help`` and ``list`` commands)."""
        return {name: _summary(member) for name, member in self._members.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._members)})"


def _is_a(member: object, base: type) -> bool:
    return issubclass(member, base) if isinstance(member, type) else isinstance(member, base)


def _summary(member: object) -> str:
    doc = getattr(member, "description", None) if not isinstance(member, type) else None
    doc = doc or getattr(member, "__doc__", None) or ""
    lines = doc.strip().splitlines()
    return lines[0].strip() if lines else ""
