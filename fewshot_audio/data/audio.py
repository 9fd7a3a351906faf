"""Audio loading: any common format and sample rate to mono float32 at a target rate."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")


def load_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Load ``path`` as mono float32 at ``sample_rate``; shape ``(samples,)``.

    WAV/FLAC/OGG/MP3 are read with libsndfile (soundfile); other formats fall
    back to librosa's audioread path. Multi-channel audio is averaged to mono and
    resampled with soxr (librosa's default).
    """
    path = Path(path)
    try:
        import soundfile as sf

        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.mean(axis=1)
    except Exception:
        try:
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, sr = librosa.load(str(path), sr=None, mono=True)
        except Exception as exc:  # noqa: BLE001 - every decoder failure is the same user problem
            raise DataError(f"cannot read audio file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if audio.size == 0:
        raise DataError(f"audio file {path} has zero samples")
    if sr != sample_rate:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def fix_length(audio: np.ndarray, *, length: int, mode: str = "centre", rng: np.random.Generator | None = None) -> np.ndarray:
    """Crop or zero-pad ``audio`` (last axis) to ``length`` samples.

    ``mode="centre"`` crops the middle and pads both sides evenly (evaluation);
    ``mode="random"`` crops at a random offset drawn from ``rng`` (training).
    """
    n = audio.shape[-1]
    if n == length:
        return audio
    if n > length:
        if mode == "random":
            start = int((rng or np.random.default_rng()).integers(0, n - length + 1))
        else:
            start = (n - length) // 2
        return audio[..., start : start + length]
    before = (length - n) // 2
    pad = [(0, 0)] * (audio.ndim - 1) + [(before, length - n - before)]
    return np.pad(audio, pad)


def split_patches(audio: np.ndarray, *, length: int, hop: int | None = None) -> np.ndarray:
    """Split a long signal into ``(n_patches, length)`` windows every ``hop`` samples.

    The last window is zero-padded; a signal shorter than ``length`` gives one padded patch.
    """
    hop = hop or length
    n = audio.shape[-1]
    n_patches = max(1, 1 + int(np.ceil(max(0, n - length) / hop)))
    padded = np.pad(audio, (0, max(0, (n_patches - 1) * hop + length - n)))
    idx = np.arange(length)[None, :] + hop * np.arange(n_patches)[:, None]
    return padded[idx]
