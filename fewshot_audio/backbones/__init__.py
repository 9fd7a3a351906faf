"""Backbones map model inputs to embeddings ``(n, d)``.

Each backbone class declares ``input_kind`` (``"logmel"`` or ``"waveform"``) and
is built from the feature shape by ``build_backbone(name, input_shape=..., channels=...)``.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError
from ..pretrained.registry import ModelSpec, is_pretrained, models
from .conv4 import Conv4
from .mfcc import MFCCStats
from .pretrained import PretrainedBackbone
from .musically_motivated import MusicallyMotivatedCNN
from .samplecnn import SampleCNN
from .small import SBCNN, TimbralCNN
from .vgg import VGGish

BACKBONES: dict[str, Callable[..., torch.nn.Module]] = {
    "conv4": Conv4,
    "musically-motivated": MusicallyMotivatedCNN,
    "vgg": VGGish,
    "samplecnn": SampleCNN,
    "timbral": TimbralCNN,
    "sbcnn": SBCNN,
    "mfcc": MFCCStats,
}


def backbone_input_kind(name: str) -> str:
    """The feature kind backbone ``name`` takes (a pretrained model's: its own front end)."""
    if is_pretrained(name):
        return ModelSpec.parse(name).model.front_end.kind
    return _lookup(name).input_kind


def _lookup(name: str):
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join([*BACKBONES, *models()])}")
    return BACKBONES[name]


def build_backbone(name: str, *, input_shape: tuple[int, ...], channels: int = 64) -> torch.nn.Module:
    """Construct backbone ``name`` for per-window inputs of ``input_shape`` (without the batch axis)."""
    if is_pretrained(name):
        return PretrainedBackbone(input_shape=tuple(input_shape), channels=channels, spec=name)
    return _lookup(name)(input_shape=tuple(input_shape), channels=channels)


def describe_backbones() -> dict[str, str]:
    out = {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in BACKBONES.items()}
    for name, model in models().items():
        out[name] = (f"pretrained {model.description}; layer {model.default_layer} by default; frozen "
                     f"('fewshot-audio weights fetch {model.source.name}' once)")
    return out
