"""Pretrained backbones from the model registry (:mod:`fewshot_audio.specs`).

Name syntax: ``MODEL[:LAYER][:finetune]``, e.g. ``yamnet``, ``aisfx:block3``, ``musicnn-mtt:penultimate``.
LAYER is the output taken as the embedding (each model's default was chosen by measurement on real
recordings: README "Results on real recordings"); outputs with a time axis ``(n, time, channels)`` or
a time-frequency map ``(n, H, W, channels)`` are pooled by mean and max. The network is frozen
(eval-mode batch norm, no gradients) unless ``:finetune`` is given. Inputs are the model's own front-end
features, one model input (window) per row; the clip policy makes the windows.
"""

from __future__ import annotations

import torch

from fewshot_audio.errors import ConfigError
from fewshot_audio.models.backbones.base import Backbone
from fewshot_audio.models.pretrained.weights import load_model
from fewshot_audio.specs import ModelSpec


def pool_output(z: torch.Tensor) -> torch.Tensor:
    """``(n, d)`` from a layer output: as it is, or mean and max over its time / time-frequency axes."""
    if z.ndim == 2:
        return z
    axes = tuple(range(1, z.ndim - 1))
    return torch.cat([z.mean(axes), z.amax(axes)], dim=1)


class PretrainedBackbone(Backbone):
    """A registered pretrained model as a backbone; see the module docstring for the name syntax."""

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64, spec: str):
        super().__init__()
        parsed = ModelSpec.parse(spec)
        self.spec, self.model_name, self.layer = spec, parsed.model.name, parsed.layer
        self.input_kind = parsed.model.front_end.kind
        if input_shape[1] != parsed.model.front_end.n_bins:
            raise ConfigError(f"{self.model_name} needs {parsed.model.front_end.n_bins} frequency bins "
                              f"(features.kind: {self.input_kind}), got {input_shape[1]}")
        self.net, self.meta = load_model(parsed.model)
        self.embedding_dim = parsed.model.layers[self.layer]
        self.cpu_batch = parsed.model.cpu_batch
        for p in self.net.parameters():
            p.requires_grad_(parsed.finetune)

    def train(self, mode: bool = True):
        """Training mode only when the network is fine-tuned; a frozen one keeps eval-mode batch norm."""
        super().train(mode and self.trainable)  # frozen: eval-mode batch norm
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pool_output(self.net(x.float())[self.layer])
