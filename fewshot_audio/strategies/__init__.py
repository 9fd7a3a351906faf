"""Strategies: every one implements :class:`Strategy`; a registry maps names to classes."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Strategy
from .maml import ANIL, FOMAML, MAML
from .prototypical import Prototypical
from .regularized import MFCCSVM, MFCCNearestNeighbour, RegularizedSBCNN, RegularizedTimbral, RegularizedVGG
from .transfer import FinetuneTransfer, LogisticTransfer, Pretrained, ProtoTransfer, SimpleShot

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Prototypical,
    Pretrained, SimpleShot, LogisticTransfer, FinetuneTransfer,
    ProtoTransfer,
    RegularizedTimbral, RegularizedSBCNN, RegularizedVGG, MFCCSVM, MFCCNearestNeighbour,
    MAML, FOMAML, ANIL,
)}


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def parse_strategies(text: str) -> list[str]:
    """``"all"`` or a comma-separated list of registered names, each optionally ``@BACKBONE`` (each checked)."""
    names = list(STRATEGIES) if text.strip() == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        strategy, _, backbone = name.partition("@")  # STRATEGY@BACKBONE: a row on another backbone
        strategy_class(strategy)
        if backbone:
            from ..backbones import backbone_input_kind

            backbone_input_kind(backbone)
    if not names:
        raise ConfigError("--strategies is empty; give 'all' or names separated by commas")
    return names


def describe_strategies() -> dict[str, str]:
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in STRATEGIES.items()}


__all__ = ["STRATEGIES", "Strategy", "describe_strategies", "parse_strategies", "strategy_class"]
