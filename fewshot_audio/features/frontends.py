"""Front ends: waveforms become model inputs. Each implements :class:`FrontEnd` and is registered in
:data:`FRONT_ENDS` by its ``features.kind``: log-mel (matching librosa), raw waveforms, and each pretrained model's
own front end from the model registry (:mod:`fewshot_audio.specs`)."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import FrontEndSpec, PatchFraming, front_ends
from fewshot_audio.util.registry import Registry

SILENCE_PEAK = 1e-4  # a clip whose peak stays below this is silent
LOG_FLOOR = 1e-10  # the power floor of the log


class LogMel(torch.nn.Module):
    """The toolkit's one log-mel spectrogram, batched; by default it matches
    ``librosa.power_to_db(librosa.feature.melspectrogram(...))``.

    Input ``(batch, samples)`` float waveforms; output ``(batch, 1, n_mels, frames)`` in dB, each clip floored at
    ``top_db`` below its own maximum. Uses ``torch.stft`` (Hann window, centred, zero padding as librosa >= 0.10)
    and librosa's Slaney mel filterbank. Detection's descriptors use it with their own settings: ``centred=False``
    (frames start at sample 0; the caller pads) and ``natural_log=True`` (``ln(mel + 1e-10)``, no ``top_db``, the
    filterbank applied frames first as detection always did, so that its descriptors stay the same to the bit).

    Examples
    --------
    >>> LogMel(FeatureConfig(n_mels=40))(torch.zeros(2, 16000)).shape
    torch.Size([2, 1, 40, 63])
    """

    def __init__(self, config: FeatureConfig, *, centred: bool = True, natural_log: bool = False):
        super().__init__()
        import librosa  # imported on use: its first import costs seconds (numba)

        self.n_fft, self.hop_length, self.top_db = config.n_fft, config.hop_length, config.top_db
        self.centred, self.natural_log = centred, natural_log
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                  fmin=config.fmin, fmax=config.fmax)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        if natural_log:  # detection's frames-first product reads the transposed filterbank
            self.register_buffer("mel_t", torch.from_numpy(mel.T.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrograms ``(batch, 1, n_mels, frames)`` in dB of waveforms ``(batch, samples)``."""
        spec = torch.stft(wave, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window, center=self.centred,
                          pad_mode="constant", return_complex=True)
        if self.natural_log:  # detection's arithmetic, frames first (its descriptors reproduce bit for bit)
            frames_first = spec.abs().square().transpose(-1, -2) @ self.mel_t
            return torch.log(frames_first + LOG_FLOOR).transpose(-1, -2).unsqueeze(1)
        power = spec.real**2 + spec.imag**2
        mel = torch.matmul(self.mel, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=LOG_FLOOR))
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return db.unsqueeze(1)


class FrontEnd(abc.ABC):
    """What one ``features.kind`` is: the per-window shape it stores, the module that computes it from
    waveforms ``(batch, samples)``, the training crop along its last axis, and how the original code frames
    a long file (``framing``: a :class:`~fewshot_audio.specs.PatchFraming`, or ``None`` for waveform
    windows cut by the clip policy)."""

    name: ClassVar[str] = ""
    channels_last: ClassVar[bool] = True  # 2-D inputs run fastest channels-last on CPUs
    framing: PatchFraming | None = None

    def shape(self, config: FeatureConfig) -> tuple[int, ...]:
        """The stored per-window shape: ``(1, n_mels, frames)`` unless the front end says otherwise."""
        return (1, config.n_mels, config.n_frames)

    @abc.abstractmethod
    def module(self, config: FeatureConfig) -> torch.nn.Module:
        """The module mapping waveforms ``(batch, samples)`` to features ``(batch, *shape(config))``."""

    def crop_size(self, config: FeatureConfig) -> int:
        """The training crop's length along the last axis (frames)."""
        full = self.shape(config)[-1]
        if config.crop is None:
            return full
        return min(full, 1 + int(round(config.crop * config.sample_rate)) // config.hop_length)


FRONT_ENDS: Registry[type[FrontEnd]] = Registry("front end (features.kind)", base=FrontEnd)
"""The built-in front ends by ``features.kind``; a pretrained model's own front end is found through its spec."""


@FRONT_ENDS.register()
class LogMelFrontEnd(FrontEnd):
    """Log-mel spectrograms in dB, ``(1, n_mels, frames)``."""

    name = "logmel"

    def module(self, config):
        return LogMel(config)


class _Channel(torch.nn.Module):
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave.unsqueeze(1)


@FRONT_ENDS.register()
class WaveformFrontEnd(FrontEnd):
    """The samples themselves, ``(1, samples)`` (end-to-end models such as SampleCNN)."""

    name = "waveform"
    channels_last = False

    def shape(self, config):
        return (1, config.n_samples)

    def module(self, config):
        return _Channel()

    def crop_size(self, config):
        """The training crop's length in samples."""
        full = config.n_samples
        return full if config.crop is None else min(full, int(round(config.crop * config.sample_rate)))


class PretrainedFrontEnd(FrontEnd):
    """A registered pretrained model's own front end (:class:`~fewshot_audio.specs.FrontEndSpec`)."""

    def __init__(self, spec: FrontEndSpec):
        self.spec, self.kind, self.framing = spec, spec.kind, spec.framing

    def module(self, config):
        return self.spec.build()


def feature_kinds() -> list[str]:
    """Every valid ``features.kind``: the built-in front ends and each registered model's own."""
    return [*FRONT_ENDS, *front_ends()]


def feature_kind(config: FeatureConfig) -> FrontEnd:
    """The :class:`FrontEnd` that ``config.kind`` names (built in, or a registered model's front end).

    Examples
    --------
    >>> feature_kind(FeatureConfig(kind="waveform")).shape(FeatureConfig(kind="waveform", duration=1.0))
    (1, 16000)
    """
    if config.kind in FRONT_ENDS:
        return FRONT_ENDS.get(config.kind)()
    if config.kind in front_ends():
        return PretrainedFrontEnd(front_ends()[config.kind])
    raise ConfigError(f"features.kind {config.kind!r} is not valid; use one of {', '.join(feature_kinds())}")


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
