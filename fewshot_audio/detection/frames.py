"""Log-mel frames of long recordings at a hop chosen from the examples, streamed block by block, and the
descriptors of windows as long as the examples.

A recording is read 60 s at a time (:func:`~fewshot_audio.data.audio.stream_audio`), so memory stays bounded
for hour-long files. Frames are centred (frame ``j`` is centred on sample ``j * hop``; the stream starts with
``n_fft // 2`` zeros) and identical to one pass over the whole file. Each band is referred to the
recording's median level in that band (:func:`band_medians`, a first pass over the file, the unlabelled
audio that DCASE lets a system use).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import stream_audio
from fewshot_audio.features.frontends import LogMel

SAMPLE_RATE, N_MELS, F_MIN = 32000, 64, 50.0
MIN_HOP_SAMPLES, MAX_HOP_SAMPLES = 32, 1600  # at 32 kHz: 1 ms to 50 ms
HOPS_PER_EXAMPLE = 8
NEGATIVE_IOU = 0.1  # a window overlapping every event less than this (IoU) is background: a negative


@dataclass(frozen=True)
class FrameSpec:
    """Frames every ``hop_samples`` of ``n_fft`` samples at ``sample_rate``; windows of ``window`` frames."""

    hop_samples: int
    n_fft: int
    window: int
    sample_rate: int = SAMPLE_RATE

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_samples

    def front_end(self) -> LogMel:
        """The toolkit's log-mel with detection's settings: 64 bands from 50 Hz, uncentred frames, natural log."""
        config = FeatureConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_samples,
                               n_mels=N_MELS, fmin=F_MIN, top_db=None)
        return LogMel(config, centred=False, natural_log=True)

    @classmethod
    def for_examples(cls, examples: np.ndarray) -> FrameSpec:
        """A hop of an eighth of the examples' mean length (1-50 ms), an FFT covering two hops (at least 512
        samples), and windows as long as the examples' mean length (at least 3 frames)."""
        mean = float(np.mean(examples[:, 1] - examples[:, 0]))
        hop = int(np.clip(round(mean / HOPS_PER_EXAMPLE * SAMPLE_RATE), MIN_HOP_SAMPLES, MAX_HOP_SAMPLES))
        n_fft = max(512, 1 << int(np.ceil(np.log2(2 * hop))))
        return cls(hop_samples=hop, n_fft=n_fft, window=max(3, int(round(mean * SAMPLE_RATE / hop))))


def stream_frames(path: str | Path, spec: FrameSpec, *, block_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Consecutive blocks of the recording's log-mel frames ``(t, 64)`` (float32), in time order: frames centred on
    every ``hop_samples``-th sample (the signal zero-padded by half an FFT at both ends), as one whole-file pass."""
    front = spec.front_end()
    half = spec.n_fft // 2
    buf = np.zeros(half, np.float32)
    with torch.no_grad():
        for mono, last in stream_audio(path, sample_rate=spec.sample_rate, block_seconds=block_seconds):
            buf = np.concatenate([buf, mono])
            if last:
                buf = np.concatenate([buf, np.zeros(half, np.float32)])
            n = (len(buf) - spec.n_fft) // spec.hop_samples + 1 if len(buf) >= spec.n_fft else 0
            if n > 0:
                block = torch.from_numpy(buf[: (n - 1) * spec.hop_samples + spec.n_fft])[None]
                yield front(block)[0, 0].T.contiguous().numpy()
                buf = buf[n * spec.hop_samples :]


def band_medians(path: str | Path, spec: FrameSpec, *, keep: int = 50_000) -> np.ndarray:
    """The median log-mel level per band ``(64,)`` over the recording (at most ``keep`` frames, evenly spread)."""
    sample, step = [], 1
    for block in stream_frames(path, spec):
        sample.append(block[::step].copy())  # a copy: a view would keep the whole block alive
        if sum(len(s) for s in sample) > 2 * keep:
            sample, step = [np.concatenate(sample)[::2]], step * 2
    frames = np.concatenate(sample) if sample else np.zeros((1, N_MELS), np.float32)
    return np.median(frames, axis=0).astype(np.float32)


def max_iou(onsets: np.ndarray, length: float, events: np.ndarray) -> np.ndarray:
    """The IoU of each window ``[onset, onset + length)`` (seconds, ``(n,)``) with the event ``(m, 2)`` it overlaps most."""
    a = onsets[:, None]
    b = a + length
    inter = np.maximum(0.0, np.minimum(b, events[None, :, 1]) - np.maximum(a, events[None, :, 0]))
    union = np.maximum(b, events[None, :, 1]) - np.minimum(a, events[None, :, 0])
    return (inter / union).max(axis=1)


def windows(frames: np.ndarray, length: int, segments: int) -> np.ndarray:
    """Descriptors of the windows of ``length`` frames starting at every frame of ``frames (t, bands)``:
    the mean of each band over ``segments`` equal parts of the window (its shape in time), then the standard
    deviation of each band over the whole window. ``(t - length + 1, bands * (segments + 1))``."""
    t, bands = frames.shape
    n = t - length + 1
    if n <= 0:
        return np.zeros((0, bands * (segments + 1)), np.float32)
    x = frames.astype(np.float64)
    c = np.concatenate([np.zeros((1, bands)), np.cumsum(x, axis=0)])
    c2 = np.concatenate([np.zeros((1, bands)), np.cumsum(x * x, axis=0)])
    start = np.arange(n)
    edges = np.round(np.linspace(0, length, segments + 1)).astype(int)
    parts = [(c[start + b] - c[start + a]) / (b - a) for a, b in zip(edges[:-1], edges[1:])]
    mean = (c[start + length] - c[start]) / length
    parts.append(np.sqrt(np.maximum((c2[start + length] - c2[start]) / length - mean * mean, 0.0)))
    return np.concatenate(parts, axis=1).astype(np.float32)
