"""Embedding models put together from specs (strategies on them: :mod:`fewshot_audio.fewshot.build`).

* :func:`model_record` / :func:`build_model`: what a saved tagger or run folder records about its
  embedding model (backbone name or pretrained spec, input shape, channels) and the model rebuilt
  from it. A record names the model, not the whole training configuration, so a tagger keeps
  loading when configuration fields are added or removed.
* :func:`feature_config`: a stored feature configuration read back tolerantly (fields this version
  no longer has are dropped with a warning, missing ones take their defaults).
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from fewshot_audio.config import FeatureConfig, TrainConfig
from fewshot_audio.errors import CheckpointError, ConfigError
from fewshot_audio.features.frontends import crop_size, feature_shape
from fewshot_audio.models.backbones import backbone_input_kind, build_backbone

logger = logging.getLogger(__name__)


RECORD_KEYS = ("backbone", "input_shape", "channels")


def check_backbone(config: TrainConfig, name: str) -> str:
    """The input kind of backbone ``name``; an error when the configured features do not provide it."""
    kind = backbone_input_kind(name)
    if kind != config.features.kind:
        raise ConfigError(f"backbone {name!r} needs {kind} inputs but features.kind is {config.features.kind!r}; "
                          f"set features.kind: {kind} in the config")
    return kind


def model_record(name: str, input_shape: tuple[int, ...], channels: int) -> dict:
    """The spec of an embedding model: enough to rebuild its architecture (weights are stored beside it)."""
    return {"backbone": name, "input_shape": [int(s) for s in input_shape], "channels": int(channels)}


def build_model(record: dict, *, where: str = "model record") -> torch.nn.Module:
    """The (untrained) embedding model a :func:`model_record` describes."""
    missing = [k for k in RECORD_KEYS if k not in (record or {})]
    if missing:
        raise CheckpointError(f"{where}: the model record lacks {', '.join(missing)}; rebuild it with this toolkit")
    return build_backbone(record["backbone"], input_shape=tuple(record["input_shape"]), channels=record["channels"])


def feature_config(data: dict, *, where: str) -> FeatureConfig:
    """A stored :class:`FeatureConfig`; fields this version does not know are dropped (with a warning)."""
    known = {f.name for f in dataclasses.fields(FeatureConfig)}
    dropped = sorted(set(data) - known)
    if dropped:
        logger.warning(f"{where}: ignoring feature setting(s) this version no longer has: {', '.join(dropped)}")
    return FeatureConfig(**{k: v for k, v in data.items() if k in known})


def input_shape(features: FeatureConfig) -> tuple[int, ...]:
    """A trainable backbone's per-window input shape: the training crop of ``features`` (an unresolved
    ``duration: auto``, with no dataset yet, is built for 1 s windows)."""
    f = features.resolved(None)
    return feature_shape(f)[:-1] + (crop_size(f),)
