"""SampleCNN (Lee et al., 2017): an end-to-end model on raw waveforms."""

from __future__ import annotations

import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("samplecnn")
class SampleCNN(Backbone):
    """SampleCNN on raw waveforms: a strided 3-sample conv then 3-sample conv + pool-by-3 blocks.

    Input ``(n, 1, samples)``; output ``(n, channels * 2)``.
    """

    input_kind = "waveform"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64):
        super().__init__()
        _, samples = input_shape
        c = channels
        layers: list[nn.Module] = [nn.Conv1d(1, c, 3, stride=3, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True)]
        length, c_in = samples // 3, c
        widths = []
        while length >= 9 and len(widths) < 9:
            c_out = c if len(widths) < 4 else 2 * c
            layers += [nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool1d(3)]
            widths.append(c_out)
            c_in, length = c_out, length // 3
        self.blocks = nn.Sequential(*layers)
        self.embedding_dim = 2 * c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / (x.std(dim=-1, keepdim=True) + 1e-5)
        h = self.blocks(x)
        return torch.cat([h.amax(dim=-1), h.mean(dim=-1)], dim=1)
