"""The backbone interface and its registry: a backbone maps model inputs ``(n, *input_shape)`` to embeddings
``(n, embedding_dim)``. A new backbone is one module with one ``@BACKBONES.register(NAME)`` class."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn

from fewshot_audio.util.registry import Registry


class Backbone(nn.Module, metaclass=abc.ABCMeta):
    """An embedding network built from the per-window input shape: ``Backbone(input_shape=..., channels=...)``.

    Declares what the harness, strategies and taggers read:

    * ``input_kind``: the feature kind it takes (``"logmel"``, ``"waveform"`` or a pretrained model's front end);
    * ``embedding_dim``: the size ``d`` of its output ``(n, d)`` (set in ``__init__``);
    * ``trainable``: whether it has weights to learn (strategies skip meta-training otherwise);
    * ``standardize``: its outputs are statistics of unlike scales, z-scored before a cosine space;
    * ``cpu_batch``: windows per forward pass on a CPU (``None``: the caller's default);
    * ``record``: what a run saves to rebuild it (:func:`~fewshot_audio.models.compose.model_record`), set by
      whoever builds it for a run (``None`` otherwise).
    """

    input_kind: ClassVar[str] = "logmel"
    standardize: ClassVar[bool] = False
    embedding_dim: int
    cpu_batch: int | None = None
    record: dict | None = None

    @property
    def trainable(self) -> bool:
        """Whether any weight takes a gradient."""
        return any(p.requires_grad for p in self.parameters())

    def prepare(self, train_inputs: torch.Tensor) -> None:
        """Fit input-dependent statistics on training inputs ``(n, *input_shape)`` before training (default:
        nothing to fit)."""

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(n, embedding_dim)`` of inputs ``(n, *input_shape)``."""


BACKBONES: Registry[type[Backbone]] = Registry("backbone", base=Backbone)
"""The built-in backbones by name (pretrained models are backbones too: :mod:`fewshot_audio.specs`)."""
