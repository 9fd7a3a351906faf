"""Conv4: four 3x3 conv + batch norm + ReLU + 2x2 max-pool blocks (Snell et al., 2017)."""

from __future__ import annotations

import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """One Conv4 block: 3x3 convolution, batch norm, ReLU, 2x2 max-pool."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


@BACKBONES.register("conv4")
class Conv4(Backbone):
    """Conv4 (4 x [conv3x3-BN-ReLU-pool]) on log-mels; frequency kept, time mean-pooled.

    Input ``(n, 1, n_mels, frames)``; output ``(n, channels * (n_mels // 16))``. Pooling the
    time axis at the end makes the embedding shift-invariant in time while keeping where
    in frequency the energy lies.
    """

    input_kind = "logmel"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64):
        super().__init__()
        _, n_mels, _ = input_shape
        self.blocks = nn.Sequential(conv_block(1, channels), conv_block(channels, channels),
                                    conv_block(channels, channels), conv_block(channels, channels))
        self.embedding_dim = channels * max(1, n_mels // 16)
        self.norm = InputNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.norm(x))  # (n, c, f, t)
        return h.mean(dim=-1).flatten(1)


class InputNorm(nn.Module):
    """Per-clip standardisation of dB log-mels: removes gain, keeps spectral shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs standardised per clip (zero mean, unit variance over all their values)."""
        mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        std = x.std(dim=tuple(range(1, x.ndim)), keepdim=True)
        return (x - mean) / (std + 1e-5)
