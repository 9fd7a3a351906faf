"""The floor every feature must beat on real audio: MFCC statistics over the whole clip, nearest centroid.

Twenty lines with librosa and numpy, independent of the toolkit's feature store, clip policy and
backbones, so that it stays a fixed reference: ``benchmarks/bench_real.py`` reports it next to every
toolkit path on the same splits and episodes.
"""

from __future__ import annotations

import numpy as np

from fewshot_audio.data.audio import load_audio


def whole_clip_mfcc(path: str, *, sample_rate: int = 16000, n_mfcc: int = 20, frame_samples: int = 2048,
                    hop_samples: int | None = None) -> np.ndarray:
    """Mean and standard deviation over the whole clip of ``n_mfcc`` MFCCs: ``(2 n_mfcc,)``. Frames of
    ``frame_samples`` every ``hop_samples`` (default a quarter frame: librosa's defaults); a clip shorter than
    one frame gets the largest power-of-two frame it holds."""
    import librosa  # imported on use: its first import compiles numba code

    y = load_audio(path, sample_rate=sample_rate)
    n_fft = min(frame_samples, 1 << int(np.floor(np.log2(max(len(y), 64)))))
    hop = hop_samples or n_fft // 4
    m = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=min(hop, n_fft))
    return np.concatenate([m.mean(1), m.std(1)]).astype(np.float32)


def nearest_centroid(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Labels of ``query (m, d)`` by the nearest class centroid of ``support (n, d)``, after z-scoring every
    dimension with the support set's statistics."""
    mean, std = support.mean(0), support.std(0) + 1e-6
    s, q = (support - mean) / std, (query - mean) / std
    classes = np.unique(support_labels)
    centroids = np.stack([s[support_labels == c].mean(0) for c in classes])
    return classes[((q[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)]
