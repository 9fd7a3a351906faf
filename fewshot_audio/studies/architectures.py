"""Randomly weighted CNNs for the architecture probe (Pons & Serra, *Randomly weighted CNNs for (music) audio
classification*, ICASSP 2019): untrained networks, He-initialised from a seed, whose features are the mean of
every feature map of the layers used (over time and frequency), about 3,585 values in all.

Spectrogram architectures read a 96-band log-mel of 12 kHz audio (n_fft 512, hop 256) ``(1, 96, frames)``;
waveform architectures read the 12 kHz samples ``(1, samples)``. An input shorter than an architecture's reach is
looped to it (:attr:`ProbeArchitecture.min_length`), as the toolkit's clip policy loops short clips.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_audio.util.registry import Registry

MAPS = 3585  # feature maps per architecture, as in the paper
N_MELS = 96


class ProbeArchitecture(nn.Module, abc.ABC):
    """A randomly weighted network: ``forward(x (1, 1, ...)) -> (n_features,)`` per-map means.
    ``input_kind``: ``logmel`` or ``waveform``; ``min_length``: frames (or samples) an input is looped to."""

    input_kind = "logmel"
    min_length = 1

    def __init__(self, *, seed: int, maps: int = MAPS):
        super().__init__()
        self.maps_total = maps
        generator = torch.Generator().manual_seed(seed)
        self.build(maps)
        for m in self.modules():  # He (variance-scaling) initialisation from the seed, zero biases
            if isinstance(m, nn.Conv1d | nn.Conv2d):
                fan_in = m.weight[0].numel()
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                    m.bias.zero_()
        self.eval()

    @abc.abstractmethod
    def build(self, maps: int) -> None:
        """Create the layers, ``maps`` feature maps in all over the layers used."""

    @abc.abstractmethod
    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps ``(1, c, ...)`` of every layer used."""

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The per-map means ``(n_features,)`` of one input ``(1, 1, ...)``, looped to ``min_length`` first."""
        x = loop_to(x, self.min_length)
        return torch.cat([m.flatten(2).mean(-1)[0] for m in self.feature_maps(x)])


ARCHITECTURES: Registry[type[ProbeArchitecture]] = Registry("probe architecture", base=ProbeArchitecture)

def loop_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """``x (..., t)`` repeated along its last axis to at least ``length``."""
    if x.shape[-1] >= length:
        return x
    reps = -(-length // x.shape[-1])
    return x.repeat(*([1] * (x.ndim - 1)), reps)


def split(total: int, parts: int) -> list[int]:
    """``total`` maps over ``parts`` layers or shapes, as evenly as whole numbers allow."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@ARCHITECTURES.register("vgg")
class RandomVGG(ProbeArchitecture):
    """Five blocks of 3x3 convolution, ELU and 2x2 max-pooling; every block's maps used."""

    min_length = 32

    def build(self, maps: int) -> None:
        widths = split(maps, 5)
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, padding=1)
                                   for c_in, c_out in zip([1, *widths[:-1]], widths))

    def feature_maps(self, x):
        out = []
        for i, conv in enumerate(self.convs):
            x = F.elu(conv(x))
            out.append(x)
            if i < len(self.convs) - 1:
                x = F.max_pool2d(x, 2)
        return out


class OneLayer(ProbeArchitecture):
    """One layer of ``height`` x 7 filters (bands x frames), ReLU, max-pooled over frequency."""

    height = N_MELS
    min_length = 7

    def build(self, maps: int) -> None:
        self.conv = nn.Conv2d(1, maps, (self.height, 7))

    def feature_maps(self, x):
        return [F.relu(self.conv(x)).amax(dim=2, keepdim=True)]


@ARCHITECTURES.register("7x96")
class OneLayer96(OneLayer):
    """The paper's 96x7 one-layer network: filters as tall as the 96-band spectrogram, 7 frames wide."""
    height = 96


@ARCHITECTURES.register("7x86")
class OneLayer86(OneLayer):
    """The paper's 86x7 one-layer network: filters 86 bands tall, 7 frames wide (some room to slide in frequency)."""
    height = 86


@ARCHITECTURES.register("timbral")
class Timbral(ProbeArchitecture):
    """Vertical (timbral) filters of two heights (0.9 and 0.4 of the mel axis) and widths 1, 3, 5 and 7 frames,
    ReLU, max-pooled over frequency (the musically motivated front end)."""

    min_length = 7
    shapes = [(h, w) for h in (86, 38) for w in (1, 3, 5, 7)]

    def build(self, maps: int) -> None:
        self.timbral = nn.ModuleList(nn.Conv2d(1, c, (h, w), padding=(0, w // 2))
                                     for (h, w), c in zip(self.shapes, split(maps, len(self.shapes))))

    def feature_maps(self, x):
        return [F.relu(conv(x)).amax(dim=2, keepdim=True) for conv in self.timbral]


@ARCHITECTURES.register("temporal")
class Temporal(ProbeArchitecture):
    """Horizontal (temporal) filters of 32, 64 and 128 frames on the mel-band average, ReLU (the musically
    motivated front end's temporal part)."""

    min_length = 128
    lengths = (32, 64, 128)

    def build(self, maps: int) -> None:
        self.temporal = nn.ModuleList(nn.Conv1d(1, c, k) for k, c in zip(self.lengths, split(maps, len(self.lengths))))

    def feature_maps(self, x):
        env = x.mean(dim=2)  # (1, 1, frames): the band average
        return [F.relu(conv(env)) for conv in self.temporal]


@ARCHITECTURES.register("timbral+temporal")
class TimbralTemporal(ProbeArchitecture):
    """Both front ends side by side, half the maps each."""

    min_length = 128

    def build(self, maps: int) -> None:
        half = split(maps, 2)
        self.timbral = nn.ModuleList(nn.Conv2d(1, c, (h, w), padding=(0, w // 2))
                                     for (h, w), c in zip(Timbral.shapes, split(half[0], len(Timbral.shapes))))
        self.temporal = nn.ModuleList(nn.Conv1d(1, c, k) for k, c in zip(Temporal.lengths,
                                                                           split(half[1], len(Temporal.lengths))))

    def feature_maps(self, x):
        return Timbral.feature_maps(self, x) + Temporal.feature_maps(self, x)


@ARCHITECTURES.register("sample-level")
class SampleLevel(ProbeArchitecture):
    """SampleCNN: a strided 3-sample convolution, then blocks of 3-sample convolution, ReLU and max-pooling by 3
    on the waveform; every block's maps used."""

    input_kind = "waveform"
    blocks = 8
    min_length = 3 ** (blocks + 1)

    def build(self, maps: int) -> None:
        widths = split(maps, self.blocks)
        self.first = nn.Conv1d(1, widths[0], 3, stride=3)
        self.convs = nn.ModuleList(nn.Conv1d(c_in, c_out, 3, padding=1) for c_in, c_out in zip(widths[:-1], widths[1:]))

    def feature_maps(self, x):
        x = F.relu(self.first(x))
        out = [x]
        for conv in self.convs:
            x = F.max_pool1d(F.relu(conv(x)), 3)
            out.append(x)
        return out


@ARCHITECTURES.register("frame-level")
class FrameLevel(ProbeArchitecture):
    """One strided convolution on the waveform: filters of 512 samples every 256, ReLU."""

    input_kind = "waveform"
    lengths: tuple[int, ...] = (512,)
    min_length = 512

    def build(self, maps: int) -> None:
        self.frames = nn.ModuleList(nn.Conv1d(1, c, k, stride=256) for k, c in zip(self.lengths,
                                                                                   split(maps, len(self.lengths))))

    def feature_maps(self, x):
        return [F.relu(conv(x)) for conv in self.frames]


@ARCHITECTURES.register("frame-level-many")
class FrameLevelMany(FrameLevel):
    """Frame-level filters of many lengths (512, 256, 128, 64 and 32 samples), all every 256 samples."""

    lengths = (512, 256, 128, 64, 32)


@ARCHITECTURES.register("mfcc")
class MFCCStatistics(ProbeArchitecture):
    """The baseline row, not a network: 20 MFCCs of the same log-mel (DCT-II, as librosa), their deltas and double
    deltas (librosa's 9-frame filter), the mean and standard deviation of each over the clip: 120 values."""

    min_length = 9
    n_mfcc = 20

    def build(self, maps: int) -> None:
        from fewshot_audio.models.backbones.mfcc import dct_matrix  # the one DCT of the toolkit's MFCCs

        self.register_buffer("dct", dct_matrix(self.n_mfcc, N_MELS), persistent=False)

    def feature_maps(self, x):
        raise NotImplementedError("MFCC statistics are not feature-map means")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 120 MFCC statistics of one log-mel input."""
        import librosa  # imported on use: its first import costs seconds

        m = (self.dct @ loop_to(x, self.min_length)[0, 0]).numpy()  # (20, frames)
        parts = [m, librosa.feature.delta(m, width=9), librosa.feature.delta(m, width=9, order=2)]
        stats = np.concatenate([np.concatenate([v.mean(axis=1), v.std(axis=1)]) for v in parts])
        return torch.from_numpy(stats).float()
