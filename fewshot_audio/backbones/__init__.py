"""Backbones map model inputs to embeddings ``(n, d)``.

Each backbone class declares ``input_kind`` (``"logmel"`` or ``"waveform"``) and
is built from the feature shape by ``build_backbone(name, input_shape=..., channels=...)``.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError
from .conv4 import Conv4
from .mfcc import MFCCStats
from .musicnn import VARIANTS, PretrainedMusicnn, build_pretrained
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


PRETRAINED = {name: PretrainedMusicnn for name in VARIANTS}  # name[:layer][:finetune]


def backbone_input_kind(name: str) -> str:
    return _lookup(name).input_kind


def _lookup(name: str):
    base = name.split(":")[0]
    if base in PRETRAINED:
        return PRETRAINED[base]
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join([*BACKBONES, *PRETRAINED])}")
    return BACKBONES[name]


def build_backbone(name: str, *, input_shape: tuple[int, ...], channels: int = 64) -> torch.nn.Module:
    """Construct backbone ``name`` for per-clip inputs of ``input_shape`` (without the batch axis)."""
    if name.split(":")[0] in PRETRAINED:
        return build_pretrained(name, input_shape=tuple(input_shape), channels=channels)
    return _lookup(name)(input_shape=tuple(input_shape), channels=channels)


def describe_backbones() -> dict[str, str]:
    out = {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in BACKBONES.items()}
    for name, model in VARIANTS.items():
        out[name] = f"pretrained {model} (musicnn 0.1.0 weights; 'fewshot-audio weights fetch musicnn'), frozen"
    return out
