"""The small models of the paper's regularized baselines."""

from __future__ import annotations

import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone
from fewshot_audio.models.backbones.conv4 import InputNorm


@BACKBONES.register("timbral")
class TimbralCNN(Backbone):
    """One-layer timbral CNN: vertical filters spanning 80% of the mel axis, global max-pool (Pons et al., 2019).

    Input ``(n, 1, n_mels, frames)``; output ``(n, channels)``.
    """

    input_kind = "logmel"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64):
        super().__init__()
        _, n_mels, _ = input_shape
        c = channels
        self.norm = InputNorm()
        self.conv = nn.Conv2d(1, c, (max(1, int(0.8 * n_mels)), 7), padding=(0, 3), bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.embedding_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(self.norm(x)))).amax(dim=(2, 3))


@BACKBONES.register("sbcnn")
class SBCNN(Backbone):
    """SB-CNN-like (Salamon & Bello, 2017): 3 x 5x5 convs (24, 48, 48) with (4, 2) max-pools, dense 64.

    Input ``(n, 1, n_mels, frames)``; output ``(n, 64)``. Time is mean-pooled before the dense layer.
    """

    input_kind = "logmel"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64):
        super().__init__()
        _, n_mels, frames = input_shape
        self.norm = InputNorm()
        self.body = nn.Sequential(
            nn.Conv2d(1, 24, 5, padding=2), nn.MaxPool2d((4, 2)), nn.ReLU(inplace=True),
            nn.Conv2d(24, 48, 5, padding=2), nn.MaxPool2d((4, 2)), nn.ReLU(inplace=True),
            nn.Conv2d(48, 48, 5, padding=2), nn.ReLU(inplace=True))
        f = max(1, n_mels // 16)
        self.dense = nn.Sequential(nn.Dropout(0.5), nn.Linear(48 * f, 64), nn.ReLU(inplace=True))
        self.embedding_dim = 64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.body(self.norm(x)).mean(dim=-1).flatten(1))
