"""Prototypical networks (Snell et al., 2017): classify by squared Euclidean distance to class means."""

from __future__ import annotations

import torch

from fewshot_audio.fewshot.strategies.base import STRATEGIES
from fewshot_audio.fewshot.strategies.embedding import EmbeddingStrategy, proto_loss_step


@STRATEGIES.register()
class Prototypical(EmbeddingStrategy):
    """Prototypical network: episodic meta-training, nearest class prototype at test time."""

    name = "prototypical"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        params = [p for p in self.backbone.parameters() if p.requires_grad]
        self.trains = self.backbone.trainable
        self.optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay) if self.trains else None

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor, targets=None):
        return proto_loss_step(self, support, query, targets)
