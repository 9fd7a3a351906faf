"""Strategies put together from a training configuration: ``train``, ``evaluate`` and ``compare`` use it."""

from __future__ import annotations

import logging

import torch

from fewshot_audio.config import TrainConfig
from fewshot_audio.features.frontends import feature_kind
from fewshot_audio.fewshot.strategies import strategy_class
from fewshot_audio.models.backbones import build_backbone
from fewshot_audio.models.compose import check_backbone, input_shape, model_record

logger = logging.getLogger(__name__)



def build_strategy(config: TrainConfig, device: torch.device, *, backbone: str | None = None,
                   strategy: str | None = None, n_classes: int = 0):
    """The strategy of ``config`` (or ``strategy``) on its backbone (or ``backbone``), checked against the
    feature kind. Its backbone carries its :func:`model_record` as ``backbone.record``."""
    cls = strategy_class(strategy or config.strategy)
    name = backbone or cls.backbone_name or config.backbone
    check_backbone(config, name)
    shape = input_shape(config.features)
    torch.manual_seed(config.seed)  # the initial weights do not depend on what ran before
    model = build_backbone(name, input_shape=shape, channels=config.channels)
    record = model_record(name, shape, config.channels)
    if feature_kind(config.features).channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        if torch.device(device).type == "cpu" and backbone is None:
            logger.warning("compile: true on the CPU: torch.compile made meta-training slower than eager on a small CPU after "
                 "a long compile (docs/results.md); it is meant for GPUs")
        model.compile()  # in place: parameter names, and so checkpoints, stay the same
    built = cls(backbone=model, device=device, lr=config.lr, weight_decay=config.weight_decay, n_classes=n_classes,
                n_way=config.train_ways or config.ways, episodes=config.episodes, seed=config.seed)
    built.backbone.record = record
    return built


def prepare_strategy(strategy, data, dev, base: list[int]) -> None:
    """Let ``strategy`` see the base classes' clips before training (feature statistics, class counts)."""
    strategy.prepare(dev.eval_inputs(torch.from_numpy(data.clips_of(base, training=True))))
