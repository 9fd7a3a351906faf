"""The one place where models are put together from specs.

* :func:`build_strategy`: a strategy of a training configuration on its backbone (``train``,
  ``evaluate``, ``compare`` and run folders loaded by ``adapt`` all use it).
* :func:`model_record` / :func:`build_model`: what a saved tagger or run folder records about its
  embedding model (backbone name or pretrained spec, input shape, channels) and the model rebuilt
  from it. A record names the model, not the whole training configuration, so a tagger keeps
  loading when configuration fields are added or removed.
* :func:`feature_config`: a stored feature configuration read back tolerantly (fields this version
  no longer has are dropped with a warning, missing ones take their defaults).
"""

from __future__ import annotations

import dataclasses

import torch

from .backbones import backbone_input_kind, build_backbone
from .config import FeatureConfig, TrainConfig
from .errors import CheckpointError, ConfigError
from .features import feature_shape
from .progress import warn
from .strategies import strategy_class

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
        warn(f"{where}: ignoring feature setting(s) this version no longer has: {', '.join(dropped)}")
    return FeatureConfig(**{k: v for k, v in data.items() if k in known})


def input_shape(features: FeatureConfig) -> tuple[int, ...]:
    """A trainable backbone's per-window input shape: the training crop of ``features`` (an unresolved
    ``duration: auto``, with no dataset yet, is built for 1 s windows)."""
    f = features.resolved(None)
    return feature_shape(f)[:-1] + (f.crop_size(),)


def build_strategy(config: TrainConfig, device: torch.device, *, backbone: str | None = None,
                   strategy: str | None = None, n_classes: int = 0):
    """The strategy of ``config`` (or ``strategy``) on its backbone (or ``backbone``), checked against the
    feature kind. Its backbone carries its :func:`model_record` as ``backbone.record``."""
    cls = strategy_class(strategy or config.strategy)
    name = backbone or cls.backbone_name or config.backbone
    kind = check_backbone(config, name)
    shape = input_shape(config.features)
    torch.manual_seed(config.seed)  # the initial weights do not depend on what ran before
    model = build_backbone(name, input_shape=shape, channels=config.channels)
    record = model_record(name, shape, config.channels)
    if kind != "waveform":
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        if torch.device(device).type == "cpu" and backbone is None:
            warn("compile: true on the CPU: in benchmarks/README.md torch.compile made Conv4 meta-training 0.79x as "
                 "fast as eager on a 2-core CPU, after ~40 s of compiling; it is meant for GPUs")
        model.compile()  # in place: parameter names, and so checkpoints, stay the same
    built = cls(backbone=model, device=device, lr=config.lr, weight_decay=config.weight_decay, n_classes=n_classes,
                n_way=config.train_ways or config.ways, episodes=config.episodes, seed=config.seed)
    built.backbone.record = record
    return built


def prepare_strategy(strategy, data, dev, base: list[int]) -> None:
    """Let ``strategy`` see the base classes' clips before training (feature statistics, class counts)."""
    strategy.prepare(dev.eval_inputs(torch.from_numpy(data.clips_of(base, training=True))))
