"""Backbones map model inputs to embeddings ``(n, d)``.

Each backbone class declares ``input_kind`` (``"logmel"`` or ``"waveform"``) and
is built from the feature shape by ``build_backbone(name, input_shape=..., channels=...)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fewshot_audio.errors import ConfigError
from fewshot_audio.models.backbones.conv4 import Conv4
from fewshot_audio.models.backbones.frame_tcn import FrameTCN
from fewshot_audio.models.backbones.mfcc import MFCCStats
from fewshot_audio.models.backbones.musically_motivated import MusicallyMotivatedCNN
from fewshot_audio.models.backbones.pretrained import PretrainedBackbone
from fewshot_audio.models.backbones.samplecnn import SampleCNN
from fewshot_audio.models.backbones.small import SBCNN, TimbralCNN
from fewshot_audio.models.backbones.vgg import VGGish
from fewshot_audio.specs import ModelSpec, is_pretrained, models

BACKBONES: dict[str, Callable[..., torch.nn.Module]] = {
    "conv4": Conv4,
    "musically-motivated": MusicallyMotivatedCNN,
    "vgg": VGGish,
    "samplecnn": SampleCNN,
    "timbral": TimbralCNN,
    "sbcnn": SBCNN,
    "mfcc": MFCCStats,
    "frame-tcn": FrameTCN,
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
