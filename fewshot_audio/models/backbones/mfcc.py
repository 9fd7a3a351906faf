"""MFCC statistics: a strong non-learned baseline embedding."""

from __future__ import annotations

import math

import torch

from fewshot_audio.models.backbones.base import BACKBONES, Backbone


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``(n_mfcc, n_mels)`` as used by ``librosa.feature.mfcc``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


@BACKBONES.register("mfcc")
class MFCCStats(Backbone):
    """MFCC statistics (no learning): mean and std of 20 MFCCs and their deltas over time.

    Input ``(n, 1, n_mels, frames)`` dB log-mels; MFCCs are their DCT-II as in
    ``librosa.feature.mfcc``. Output ``(n, 80)``, z-scored with statistics fitted on
    training (base-class) clips by :meth:`prepare`, so no statistic dominates the distance.
    """

    input_kind = "logmel"
    standardize = True  # statistics of unlike scales: a tagger z-scores them before its cosine space

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64, n_mfcc: int = 20):
        super().__init__()
        _, n_mels, _ = input_shape
        self.register_buffer("dct", dct_matrix(min(n_mfcc, n_mels), n_mels), persistent=False)
        self.embedding_dim = 4 * min(n_mfcc, n_mels)
        self.register_buffer("mean", torch.zeros(self.embedding_dim))
        self.register_buffer("std", torch.ones(self.embedding_dim))

    @torch.no_grad()
    def prepare(self, x: torch.Tensor) -> None:
        """Fit the z-score statistics on training inputs ``(n, 1, n_mels, frames)``."""
        self.mean.zero_()
        self.std.fill_(1.0)
        stats = torch.cat([self(chunk) for chunk in x.split(256)])
        self.mean.copy_(stats.mean(0))
        self.std.copy_(stats.std(0) + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mfcc = torch.matmul(self.dct, x[:, 0].float())  # (n, n_mfcc, t)
        delta = mfcc[..., 1:] - mfcc[..., :-1]
        stats = torch.cat([mfcc.mean(-1), mfcc.std(-1), delta.mean(-1), delta.std(-1)], dim=1)
        return (stats - self.mean) / self.std
