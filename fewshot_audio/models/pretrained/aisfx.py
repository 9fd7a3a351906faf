"""aisfx: a general sound-effects embedder (Ma and Lerch, ISMIR 2022, "Representation learning for the
automatic indexing of sound effects libraries"), ported to this toolkit.

The weights ship in the PyPI wheel ``aisfx==0.1.2`` as ``aisfx/models/checkpoint.pth``: a PyTorch state
dict (with a dict of the nine training libraries beside it) of an 8-layer CNN (four blocks of two 3x3
conv -> batch norm -> ReLU, 2x2 max-pooling after the first three; 64..512 channels), trained across
nine professional sound-effects libraries. The embedding is the 512-channel map averaged over frequency
and max-pooled over time. The file is read with ``torch.load(weights_only=True)`` and an allow-list of
the two numpy types it holds, never plain pickle; the wheel (which pins old librosa and numpy) is never
installed. Model licence: CC BY 4.0, Copyright (c) 2022 A.B. Ma and A. Lerch (LICENSE in the wheel).

Front end (the package's librosa one): 44.1 kHz audio scaled to a peak of 1, power mel spectrogram
(n_fft 2048 Hann, hop 1024, centred, 96 HTK bands 0-22.05 kHz with unit-sum filters),
``log10(10000 x + 1)`` divided by 9.4578 (the paper's normalisation), 100-frame blocks (2.3 s). Here
each window is scaled to its own peak (the package scales the whole file: equal for clips of one window).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.core.multiarray import scalar
from torch import nn

from fewshot_audio.errors import DataError
from fewshot_audio.specs import FrontEndSpec, PretrainedModel, WeightsSource, register

SR, N_FFT, HOP, N_MELS, BLOCK = 44100, 2048, 1024, 96, 100
SPEC_MAX = 9.457798957824707  # spectrogram_normalize('original'): the training sets' maximum


class AisfxLogMel(nn.Module):
    """Waveforms ``(batch, samples)`` at 44.1 kHz -> ``(batch, 1, 96, frames)`` as aisfx computes them."""

    def __init__(self):
        super().__init__()
        import librosa  # imported on use: its first import compiles numba code

        mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=SR / 2, htk=True, norm=1.0)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """aisfx's features ``(batch, 1, 96, frames)`` of waveforms ``(batch, samples)`` at 44.1 kHz."""
        peak = wave.abs().amax(dim=-1, keepdim=True)
        wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak))
        spec = torch.stft(wave, n_fft=N_FFT, hop_length=HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)
        mel = torch.matmul(self.mel, spec.real**2 + spec.imag**2)
        return (torch.log10(mel * 10000.0 + 1.0) / SPEC_MAX).unsqueeze(1)


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(c_out), nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class AisfxNet(nn.Module):
    """aisfx's ``EmbeddingNet('max', 3, 1, 64)`` on ``(n, 1, 96, frames)`` features. Outputs: ``embedding``
    ``(n, 512)`` (the original's: mean over frequency, max over time) and the blocks' maps averaged over
    frequency as ``(n, time, channels)`` (``block2`` 128, ``block3`` 256, ``block4`` 512 channels)."""

    def __init__(self):
        super().__init__()
        self.embedding_net = nn.Module()
        for i, (c_in, c_out) in enumerate([(1, 64), (64, 128), (128, 256), (256, 512)], start=1):
            setattr(self.embedding_net, f"conv_block{i}", _ConvBlock(c_in, c_out))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named outputs (``embedding``, ``block2``-``block4``) of features ``(n, 1, 96, frames)``."""
        h = x.transpose(-1, -2)  # (n, 1, time, bands), as the original
        outs = {}
        for i in range(1, 5):
            h = getattr(self.embedding_net, f"conv_block{i}")(h)
            if i < 4:
                h = F.max_pool2d(h, 2)
            outs[f"block{i}"] = h.mean(dim=3).transpose(1, 2)  # (n, time, channels)
        outs["embedding"] = outs["block4"].amax(dim=1)
        return outs


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The embedding network's tensors from ``checkpoint.pth`` (weights-only unpickling, two numpy types allowed)."""


    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype("int64"))]

    try:
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state, _libraries = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"{path} is not the aisfx 0.1.2 checkpoint ({str(exc).splitlines()[0][:120]}); "
                        "download the wheel again") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k.startswith("embedding_net.")}


def convert_wheel(root: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """The aisfx weights read from the unpacked wheel at ``root``: ``{file stem: (state dict, metadata)}``."""
    path = root / "aisfx" / "models" / "checkpoint.pth"
    if not path.is_file():
        raise DataError(f"{path} is missing; is this the aisfx 0.1.2 wheel?")
    state = _read_checkpoint(path)
    AisfxNet().load_state_dict(state)  # strict: every tensor of the embedding network
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"aisfx": (state, {"model": "aisfx", "checkpoint_sha256": digest})}


SOURCE = WeightsSource(
    name="aisfx", package="aisfx", version="0.1.2", convert=convert_wheel,
    licence="aisfx model and weights: Copyright (c) 2022 A.B. Ma and A. Lerch, CC BY 4.0 (LICENSE in the wheel); "
            "from the PyPI wheel aisfx==0.1.2, converted by fewshot-audio")
FRONT_END = FrontEndSpec(kind="aisfx", sample_rate=SR, n_bins=N_MELS, window_samples=(BLOCK - 1) * HOP, build=AisfxLogMel,
                     frames=lambda n: 1 + n // HOP, fixed={"n_fft": N_FFT, "hop_length": HOP})
register(PretrainedModel(
    name="aisfx", front_end=FRONT_END, source=SOURCE, weights_file="aisfx", build=AisfxNet,
    description="aisfx 0.1.2 (sound effects, 9 professional libraries, ISMIR 2022; 2.3 s windows at 44.1 kHz)",
    layers={"embedding": 512, "block2": 256, "block3": 512, "block4": 1024}, default_layer="embedding",
    cpu_batch=4, auto_layers=("embedding",), auto_general=True))
