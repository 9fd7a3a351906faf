"""Front ends: waveforms become model inputs. Log-mel (matching librosa), raw waveforms, and each
pretrained model's own front end from the registry (:mod:`fewshot_audio.specs`, ``features.kind``)."""

from __future__ import annotations

import numpy as np
import torch

from fewshot_audio.config import FEATURE_KINDS, FeatureConfig
from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import FrontEnd, front_ends

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


class FeatureKind:
    """What one ``features.kind`` is: the per-window shape it stores, the module that computes it from
    waveforms ``(batch, samples)``, the training crop along its last axis, and how the original code frames
    a long file (``framing``: a :class:`~fewshot_audio.specs.PatchFraming`, or ``None`` for waveform
    windows cut by the clip policy)."""

    name = ""
    channels_last = True  # 2-D inputs run fastest channels-last on CPUs
    framing = None

    def shape(self, config: FeatureConfig) -> tuple[int, ...]:
        return (1, config.n_mels, config.n_frames)

    def module(self, config: FeatureConfig) -> torch.nn.Module:
        raise NotImplementedError

    def crop_size(self, config: FeatureConfig) -> int:
        full = self.shape(config)[-1]
        if config.crop is None:
            return full
        return min(full, 1 + int(round(config.crop * config.sample_rate)) // config.hop_length)


class LogMelKind(FeatureKind):
    """Log-mel spectrograms in dB, ``(1, n_mels, frames)``."""

    name = "logmel"

    def module(self, config):
        return LogMel(config)


class _Channel(torch.nn.Module):
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave.unsqueeze(1)


class WaveformKind(FeatureKind):
    """The samples themselves, ``(1, samples)`` (end-to-end models such as SampleCNN)."""

    name = "waveform"
    channels_last = False

    def shape(self, config):
        return (1, config.n_samples)

    def module(self, config):
        return _Channel()

    def crop_size(self, config):
        full = config.n_samples
        return full if config.crop is None else min(full, int(round(config.crop * config.sample_rate)))


class PretrainedKind(FeatureKind):
    """A registered pretrained model's own front end (:class:`~fewshot_audio.specs.FrontEnd`)."""

    def __init__(self, spec: FrontEnd):
        self.spec, self.name, self.framing = spec, spec.kind, spec.framing

    def module(self, config):
        return self.spec.build()


KINDS: dict[str, FeatureKind] = {k.name: k for k in (LogMelKind(), WaveformKind())}
assert set(KINDS) == set(FEATURE_KINDS), "every built-in feature kind of the config has a FeatureKind"


def feature_kind(config: FeatureConfig) -> FeatureKind:
    """The :class:`FeatureKind` that ``config.kind`` names (built in, or a registered model's front end)."""
    if config.kind in KINDS:
        return KINDS[config.kind]
    if config.kind in front_ends():
        return PretrainedKind(front_ends()[config.kind])
    raise ConfigError(f"features.kind {config.kind!r} is not valid; use one of "
                      f"{', '.join([*KINDS, *front_ends()])}")


def feature_shape(config: FeatureConfig) -> tuple[int, ...]:
    """Per-window stored shape: ``(1, bins, frames)`` or ``(1, samples)``."""
    return feature_kind(config).shape(config)


def crop_size(config: FeatureConfig) -> int:
    """Length, along the last axis, of the training crop (frames or samples)."""
    return feature_kind(config).crop_size(config)


def front_end(config: FeatureConfig) -> torch.nn.Module:
    """The module mapping waveforms ``(batch, samples)`` to features ``(batch, *feature_shape(config))``."""
    return feature_kind(config).module(config)


def compute_features(waves: np.ndarray, config: FeatureConfig, *, device: str = "cpu") -> np.ndarray:
    """Features of a batch of fixed-length waveforms ``(batch, samples)``; returns ``(batch, *feature_shape)``."""
    front = front_end(config).to(device)
    with torch.no_grad():
        return front(torch.from_numpy(np.asarray(waves, dtype=np.float32)).to(device)).cpu().numpy()
