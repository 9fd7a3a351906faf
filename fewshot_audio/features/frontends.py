"""Front ends: waveforms become model inputs. Log-mel (matching librosa), raw waveforms, and each
pretrained model's own front end from the registry (:mod:`fewshot_audio.specs`, ``features.kind``)."""

from __future__ import annotations

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.specs import front_ends

SILENCE_PEAK = 1e-4  # a clip whose peak stays below this is silent


class LogMel(torch.nn.Module):
    """Batched log-mel spectrogram matching ``librosa.power_to_db(librosa.feature.melspectrogram(...))``.

    Input ``(batch, samples)`` float waveforms; output ``(batch, 1, n_mels, frames)`` in dB,
    each clip floored at ``top_db`` below its own maximum. Uses ``torch.stft`` (Hann window,
    centred, zero padding as librosa >= 0.10) and librosa's Slaney mel filterbank.
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        import librosa  # imported on use: its first import costs seconds (numba)

        self.n_fft, self.hop_length, self.top_db = config.n_fft, config.hop_length, config.top_db
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                  fmin=config.fmin, fmax=config.fmax)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real**2 + spec.imag**2
        mel = torch.matmul(self.mel, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return db.unsqueeze(1)


def feature_shape(config: FeatureConfig) -> tuple[int, ...]:
    """Per-window stored shape: ``(1, n_mels, frames)`` or ``(1, samples)``."""
    if config.kind == "waveform":
        return (1, config.n_samples)
    return (1, config.n_mels, config.n_frames)


def front_end(config: FeatureConfig) -> torch.nn.Module:
    """The module mapping waveforms ``(batch, samples)`` to features ``(batch, 1, bins, frames)``: the log-mel
    front end, or a registered pretrained model's own (``features.kind`` names it)."""
    if config.kind in front_ends():
        return front_ends()[config.kind].build()
    return LogMel(config)


def compute_features(waves: np.ndarray, config: FeatureConfig, *, device: str = "cpu") -> np.ndarray:
    """Features of a batch of fixed-length waveforms ``(batch, samples)``; returns ``(batch, *feature_shape)``."""
    if config.kind == "waveform":
        return waves[:, None, :].astype(np.float32)
    front = front_end(config).to(device)
    with torch.no_grad():
        return front(torch.from_numpy(waves).to(device)).cpu().numpy()
