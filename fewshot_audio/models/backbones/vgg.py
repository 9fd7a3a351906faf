"""A VGG-style CNN with batch norm and dropout, as the paper's regularized VGG model."""

from __future__ import annotations

import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone
from fewshot_audio.models.backbones.conv4 import InputNorm


@BACKBONES.register("vgg")
class VGGish(Backbone):
    """VGG-style CNN: 5 x [conv3x3-BN-ELU-pool] with dropout, global max + mean pool.

    Input ``(n, 1, n_mels, frames)``; output ``(n, 2 * channels)``.
    """

    input_kind = "logmel"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64, dropout: float = 0.25):
        super().__init__()
        _, n_mels, frames = input_shape
        layers: list[nn.Module] = []
        c_in = 1
        h, w = n_mels, frames
        for i in range(5):
            c_out = channels if i < 4 else channels
            pool = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ELU(inplace=True),
                       nn.MaxPool2d(pool), nn.Dropout(dropout)]
            h, w, c_in = h // pool[0], w // pool[1], c_out
        self.norm = InputNorm()
        self.blocks = nn.Sequential(*layers)
        self.embedding_dim = 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.norm(x)).flatten(2)
        return torch.cat([h.amax(dim=-1), h.mean(dim=-1)], dim=1)
