"""Backbones map model inputs to embeddings ``(n, d)``: every one implements :class:`Backbone` and is registered
in :data:`BACKBONES`; a registered pretrained model (:mod:`fewshot_audio.specs`) is a backbone too.

Each is built from the feature shape by ``build_backbone(name, input_shape=..., channels=...)``.
"""

from __future__ import annotations

from fewshot_audio.errors import ConfigError
from fewshot_audio.models.backbones import (  # noqa: F401  (each module registers its backbones)
    conv4,
    frame_tcn,
    mfcc,
    musically_motivated,
    samplecnn,
    small,
    vgg,
)
from fewshot_audio.models.backbones.base import BACKBONES, Backbone
from fewshot_audio.models.backbones.pretrained import PretrainedBackbone
from fewshot_audio.specs import ModelSpec, is_pretrained, models


def backbone_input_kind(name: str) -> str:
    """The feature kind backbone ``name`` takes (a pretrained model's: its own front end).

    Examples
    --------
    >>> backbone_input_kind("samplecnn")
    'waveform'
    """
    if is_pretrained(name):
        return ModelSpec.parse(name).model.front_end.kind
    return backbone_class(name).input_kind


def backbone_class(name: str) -> type[Backbone]:
    """The built-in backbone class registered as ``name`` (an unknown name lists built-in and pretrained ones)."""
    if name not in BACKBONES:
        raise ConfigError(f"{BACKBONES.unknown(name)}; pretrained: {', '.join(models())}")
    return BACKBONES.get(name)


def build_backbone(name: str, *, input_shape: tuple[int, ...], channels: int = 64) -> Backbone:
    """Construct backbone ``name`` for per-window inputs of ``input_shape`` (without the batch axis)."""
    if is_pretrained(name):
        return PretrainedBackbone(input_shape=tuple(input_shape), channels=channels, spec=name)
    return backbone_class(name)(input_shape=tuple(input_shape), channels=channels)


def describe_backbones() -> dict[str, str]:
    """Each backbone name (built-in and pretrained) and a one-line description."""
    out = BACKBONES.describe()
    for name, model in models().items():
        out[name] = (f"pretrained {model.description}; layer {model.default_layer} by default; frozen "
                     f"('fewshot-audio weights fetch {model.source.name}' once)")
    return out


__all__ = ["BACKBONES", "Backbone", "PretrainedBackbone", "backbone_class", "backbone_input_kind", "build_backbone",
           "describe_backbones"]
