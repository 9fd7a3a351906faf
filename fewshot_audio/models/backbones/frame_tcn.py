"""FrameTCN: a frame-level embedding of log-mel frames for detection, and window embeddings built from it.

Frames come at a hop of an eighth of the events' length (:mod:`fewshot_audio.detection.frames`), so an event is
about ``EVENT_FRAMES`` frames whatever its duration: the network learns shapes in units of the event's own length.
Three valid temporal convolutions (the 64 mel bands are the input channels; each layer sees three frames) give
each frame an embedding from the ``CONTEXT`` frames on either side of it. A window (an event candidate) is
described by the mean frame embedding over each of ``SEGMENTS`` equal parts of it: its shape in time.

As a backbone (``build_backbone("frame-tcn")``) it takes a patch ``(n, 1, 64, W + 2 * CONTEXT)``, a window of ``W``
frames with its context, and returns ``(n, SEGMENTS * dim)``; :meth:`FrameTCN.frame_embeddings` gives every frame of a
long recording at once, and :func:`window_means` turns those into the same window embeddings for every start.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fewshot_audio.models.backbones.base import BACKBONES, Backbone

CONTEXT = 3  # frames of context on either side of a frame (three valid convolutions of width 3)
SEGMENTS = 4
EVENT_FRAMES = 8


def segment_edges(length: int, segments: int = SEGMENTS) -> np.ndarray:
    """Where the ``segments`` equal parts of a window of ``length`` frames begin and end (as frames.windows cuts)."""
    return np.round(np.linspace(0, length, segments + 1)).astype(int)


@BACKBONES.register("frame-tcn")
class FrameTCN(Backbone):
    """Frame-level temporal CNN on band-referenced log-mel frames; window embedding = segment means."""

    input_kind = "logmel"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 128, dim: int = 64):
        super().__init__()
        n_mels = input_shape[-2]
        self.net = nn.Sequential(
            nn.Conv1d(n_mels, channels, 3), nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 3), nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
            nn.Conv1d(channels, dim, 3))
        self.dim = dim
        self.embedding_dim = SEGMENTS * dim

    def frame_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 64, t)`` frames -> ``(n, dim, t - 2 * CONTEXT)``: output ``j`` is input frame ``j + CONTEXT``."""
        return self.net(frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patches ``(n, 1, 64, W + 2 * CONTEXT)`` -> window embeddings ``(n, SEGMENTS * dim)``."""
        h = self.frame_embeddings(x.flatten(1, -2) if x.ndim == 4 else x)  # (n, dim, W)
        edges = segment_edges(h.shape[-1])
        return torch.cat([h[..., a:b].mean(-1) for a, b in zip(edges[:-1], edges[1:])], dim=1)


def window_means(h: np.ndarray, length: int) -> np.ndarray:
    """Window embeddings ``(t - length + 1, SEGMENTS * dim)`` of every window of ``length`` frames of the frame
    embeddings ``h (t, dim)`` (cumulative sums: two passes whatever the length); equal to :meth:`FrameTCN.forward`
    on each window's patch."""
    t, dim = h.shape
    n = t - length + 1
    if n <= 0:
        return np.zeros((0, SEGMENTS * dim), np.float32)
    c = np.concatenate([np.zeros((1, dim)), np.cumsum(h.astype(np.float64), axis=0)])
    start = np.arange(n)
    edges = segment_edges(length)
    parts = [(c[start + b] - c[start + a]) / (b - a) for a, b in zip(edges[:-1], edges[1:])]
    return np.concatenate(parts, axis=1).astype(np.float32)
