"""Strategies: every one implements :class:`Strategy`; a registry maps names to classes."""

from __future__ import annotations

from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.strategies.base import Strategy
from fewshot_audio.fewshot.strategies.maml import ANIL, FOMAML, MAML
from fewshot_audio.fewshot.strategies.prototypical import Prototypical
from fewshot_audio.fewshot.strategies.regularized import (
    MFCCSVM,
    MFCCNearestNeighbour,
    RegularizedSBCNN,
    RegularizedTimbral,
    RegularizedVGG,
)
from fewshot_audio.fewshot.strategies.transfer import (
    FinetuneTransfer,
    LogisticTransfer,
    Pretrained,
    ProtoTransfer,
    SimpleShot,
)
from fewshot_audio.models.backbones import backbone_input_kind

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
            backbone_input_kind(backbone)
    if not names:
        raise ConfigError("--strategies is empty; give 'all' or names separated by commas")
    return names


def describe_strategies() -> dict[str, str]:
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in STRATEGIES.items()}


__all__ = ["STRATEGIES", "Strategy", "describe_strategies", "parse_strategies", "strategy_class"]
