"""Strategies: every one implements :class:`Strategy`; a registry maps names to classes."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Strategy
from .prototypical import Prototypical

STRATEGIES: dict[str, type[Strategy]] = {
    "prototypical": Prototypical,
}


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def describe_strategies() -> dict[str, str]:
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in STRATEGIES.items()}


__all__ = ["STRATEGIES", "Strategy", "describe_strategies", "strategy_class"]
