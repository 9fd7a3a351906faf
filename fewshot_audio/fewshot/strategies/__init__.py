"""Strategies: every one implements :class:`Strategy` and is registered in :data:`STRATEGIES` by its module.

The modules are imported in the order ``compare --strategies all`` runs them.
"""

from __future__ import annotations

from fewshot_audio.errors import ConfigError

from fewshot_audio.fewshot.strategies.prototypical import Prototypical  # isort: skip  (the order of 'all')
from fewshot_audio.fewshot.strategies.transfer import (  # isort: skip
    FinetuneTransfer,
    LogisticTransfer,
    Pretrained,
    ProtoTransfer,
    SimpleShot,
)
from fewshot_audio.fewshot.strategies.regularized import (  # isort: skip
    MFCCSVM,
    MFCCNearestNeighbour,
    RegularizedSBCNN,
    RegularizedTimbral,
    RegularizedVGG,
)
from fewshot_audio.fewshot.strategies.maml import ANIL, FOMAML, MAML  # isort: skip
from fewshot_audio.fewshot.strategies.base import STRATEGIES, Strategy  # isort: skip
from fewshot_audio.models.backbones import backbone_input_kind


def strategy_class(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``.

    Examples
    --------
    >>> strategy_class("prototypical").__name__
    'Prototypical'
    """
    return STRATEGIES.get(name)


def parse_strategies(text: str) -> list[str]:
    """``"all"`` or a comma-separated list of registered names, each optionally ``@BACKBONE`` (each checked).

    Examples
    --------
    >>> parse_strategies("prototypical, mfcc-svm@mfcc")
    ['prototypical', 'mfcc-svm@mfcc']
    """
    names = STRATEGIES.names() if text.strip() == "all" else [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        strategy, _, backbone = name.partition("@")  # STRATEGY@BACKBONE: a row on another backbone
        strategy_class(strategy)
        if backbone:
            backbone_input_kind(backbone)
    if not names:
        raise ConfigError(f"strategies={text!r} is empty; give 'all' or names separated by commas")
    return names


def describe_strategies() -> dict[str, str]:
    """Each strategy's name and the first line of its docstring."""
    return STRATEGIES.describe()


__all__ = ["ANIL", "FOMAML", "MAML", "MFCCSVM", "STRATEGIES", "FinetuneTransfer", "LogisticTransfer", "MFCCNearestNeighbour",
           "Pretrained", "ProtoTransfer", "Prototypical", "RegularizedSBCNN", "RegularizedTimbral", "RegularizedVGG",
           "SimpleShot", "Strategy", "describe_strategies", "parse_strategies", "strategy_class"]
