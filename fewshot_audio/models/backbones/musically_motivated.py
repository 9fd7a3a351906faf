"""The musically motivated CNN (after Pons et al., 2016-2019, and musicnn's front end).

Front end: *vertical* timbral filters spanning large fractions of the mel axis (several
heights, short in time), max-pooled over frequency, plus *horizontal* temporal filters
(several lengths) over the frequency-averaged spectrogram. Mid end: 1-D convolutions with
residual connections. Back end: max and mean pooling over time, then a dense embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone
from fewshot_audio.models.backbones.conv4 import InputNorm


@BACKBONES.register("musically-motivated")
class MusicallyMotivatedCNN(Backbone):
    """Musically motivated CNN: vertical timbral + horizontal temporal filters (Pons' musicnn front end).

    Input ``(n, 1, n_mels, frames)``; output ``(n, 2 * channels)``.
    """

    input_kind = "logmel"
    timbral_heights = (0.9, 0.4)
    timbral_width = 7

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64):
        super().__init__()
        _, n_mels, frames = input_shape
        c = channels
        self.norm = InputNorm()
        self.timbral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1, c, (max(1, int(h * n_mels)), self.timbral_width),
                                    padding=(0, self.timbral_width // 2), bias=False),
                          nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            for h in self.timbral_heights)
        widths = sorted({max(3, (frames // d) | 1) for d in (2, 4, 8)}, reverse=True)
        self.temporal = nn.ModuleList(
            nn.Sequential(nn.Conv1d(1, c // 2, w, padding=w // 2, bias=False), nn.BatchNorm1d(c // 2),
                          nn.ReLU(inplace=True))
            for w in widths)
        front = c * len(self.timbral) + (c // 2) * len(self.temporal)
        self.mid1 = nn.Sequential(nn.Conv1d(front, c, 7, padding=3, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True))
        self.mid2 = nn.Sequential(nn.Conv1d(c, c, 7, padding=3, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True))
        self.mid3 = nn.Sequential(nn.Conv1d(c, c, 7, padding=3, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Linear(2 * (front + 3 * c), 2 * c), nn.BatchNorm1d(2 * c))
        self.embedding_dim = 2 * c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        frames = x.shape[-1]
        timbral = [branch(x).amax(dim=2) for branch in self.timbral]  # (n, c, t)
        profile = x.mean(dim=2)  # (n, 1, t): frequency-averaged energy over time
        temporal = [branch(profile)[..., :frames] for branch in self.temporal]
        front = torch.cat(timbral + temporal, dim=1)
        m1 = self.mid1(front)
        m2 = self.mid2(m1) + m1
        m3 = self.mid3(m2) + m2
        h = torch.cat([front, m1, m2, m3], dim=1)
        pooled = torch.cat([h.amax(dim=-1), h.mean(dim=-1)], dim=1)
        return self.head(pooled)
