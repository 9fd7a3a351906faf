"""Google's speech embedding (Lin et al., ICASSP 2020, "Training keyword spotters with limited and
synthesized speech data"; TF Hub ``google/speech_embedding/1``), ported to PyTorch.

A keyword-spotting front end trained on about 200 million 2-second clips of speech (YouTube); it maps
0.775 s of 16 kHz speech to one 96-dimensional embedding, on which the paper trains keyword
detectors from a few examples. That makes it the pretrained model for spoken words, where the music
and sound-effects models above are weak.

The weights come from ``openwakeword/resources/models/embedding_model.onnx`` inside the PyPI wheel
``openwakeword==0.4.0`` (later versions download it instead of shipping it): openWakeWord's
re-implementation of the TF Hub module, an ONNX graph of 20 convolutions (batch norm folded into all but
the first, LeakyReLU(0.2) clamped at -0.4, four max-pools). :func:`convert_wheel` reads it with the
``onnx`` package (needed at conversion time only). Licences: openWakeWord's code is Apache-2.0 and its
README says this model is Google's TF Hub module under Apache-2.0; the same README puts "all of the
included pre-trained models" under CC BY-NC-SA 4.0 (meant for its wake-word models). Check both before
commercial use. The file is never redistributed: each user converts it from the wheel.

Front end (openWakeWord's ``melspectrogram.onnx``, rebuilt here and checked against it in the tests):
16 kHz audio at int16 scale, power STFT of 400-sample periodic Hann frames centred in 512-sample FFT
frames every 160 samples (no padding), 32 Slaney mel bands 60-3800 Hz, ``10 log10(max(mel, 1e-10))``
floored at the maximum - 80 dB, then ``x / 10 + 2`` (openWakeWord's match to the TF Hub features); one
model input is 76 frames (0.782 s). The 80 dB floor is taken per window here (per input chunk there).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_audio.errors import DataError
from fewshot_audio.specs import FrontEndSpec, PatchFraming, PretrainedModel, WeightsSource, register

SR, WIN, N_FFT, HOP, N_BANDS, F_LOW, F_HIGH, TOP_DB, FRAMES = 16000, 400, 512, 160, 32, 60.0, 3800.0, 80.0, 76
INT16 = 32768.0
# output channels of the 20 convolutions; (1, 3) kernels pad the band axis, (3, 1) ones shrink time
CHANNELS = [24, 24, 24, 48, 48, 48, 48, 72, 72, 72, 72, 96, 96, 96, 96, 96, 96, 96, 96, 96]
POOL_AFTER = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}  # conv index -> (time, band) max-pool
SLOPE, FLOOR = 0.2, -0.4


def stft_window() -> torch.Tensor:
    """The 400-sample periodic Hann window centred in a 512-sample frame."""
    pad = (N_FFT - WIN) // 2
    return F.pad(torch.hann_window(WIN, dtype=torch.float64), (pad, N_FFT - WIN - pad)).float()


class SpeechMel(nn.Module):
    """Waveforms ``(batch, samples)`` in [-1, 1] at 16 kHz -> ``(batch, 1, 32, frames)``,
    frames = 1 + (samples - 512) // 160."""

    def __init__(self):
        super().__init__()
        import librosa  # imported on use: its first import compiles numba code

        mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_BANDS, fmin=F_LOW, fmax=F_HIGH, htk=False, norm="slaney")
        self.register_buffer("mel", torch.from_numpy(mel.T.copy()).float(), persistent=False)
        self.register_buffer("window", stft_window(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """The speech embedding's features ``(batch, 1, 32, frames)`` of waveforms ``(batch, samples)`` at 16 kHz."""
        if wave.shape[-1] < N_FFT:
            wave = F.pad(wave, (0, N_FFT - wave.shape[-1]))
        frames = wave.unfold(-1, N_FFT, HOP) * (self.window * INT16)  # (batch, frames, 512)
        power = torch.fft.rfft(frames).abs().square()
        db = 10.0 * torch.log10((power @ self.mel).clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - TOP_DB)
        return (db / 10.0 + 2.0).transpose(1, 2).unsqueeze(1)


class SpeechEmbeddingNet(nn.Module):
    """The speech embedding on ``(n, 1, 32, 76)`` features. Output: ``embedding`` ``(n, 96)``."""

    def __init__(self):
        super().__init__()
        convs, c_in = [], 1
        for i, c_out in enumerate(CHANNELS):
            if i == 0:
                convs.append(nn.Conv2d(1, c_out, 3, bias=False))
            elif i == len(CHANNELS) - 1:
                convs.append(nn.Conv2d(c_in, c_out, (3, 1), bias=False))
            elif i % 2:  # (1, 3) over bands, zero-padded
                convs.append(nn.Conv2d(c_in, c_out, (1, 3), padding=(0, 1)))
            else:  # (3, 1) over time, valid
                convs.append(nn.Conv2d(c_in, c_out, (3, 1)))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.bn = nn.BatchNorm2d(CHANNELS[0], eps=1e-3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named output ``embedding`` ``(n, 96)`` of features ``(n, 1, 32, 76)``."""
        h = F.pad(x.transpose(-1, -2), (1, 1))  # (n, 1, 76 frames, 34 bands), as the original
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i == last:
                break
            if i == 0:
                h = self.bn(F.relu(h))
            h = F.leaky_relu(h, SLOPE).clamp_min(FLOOR)
            if i in POOL_AFTER:
                h = F.max_pool2d(h, POOL_AFTER[i])
        return {"embedding": h.flatten(1)}


def convert_onnx(graph) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of :class:`SpeechEmbeddingNet` from openWakeWord's ``embedding_model.onnx`` graph."""
    from onnx import numpy_helper  # optional: only the weights conversion needs it


    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    norms = [n for n in graph.node if n.op_type == "BatchNormalization"]
    if len(convs) != len(CHANNELS) or len(norms) != 1:
        raise DataError(f"the ONNX graph has {len(convs)} convolutions and {len(norms)} batch norms; the speech "
                        f"embedding has {len(CHANNELS)} and 1: is this openwakeword 0.4.0's embedding_model.onnx?")
    state = {}
    for i, node in enumerate(convs):
        state[f"convs.{i}.weight"] = consts[node.input[1]]
        if len(node.input) > 2:
            state[f"convs.{i}.bias"] = consts[node.input[2]]
    for key, name in zip(("weight", "bias", "running_mean", "running_var"), norms[0].input[1:]):
        state[f"bn.{key}"] = consts[name]
    state["bn.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def convert_wheel(root: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """The speech-embedding weights read from the unpacked wheel at ``root``: ``{file stem: (state dict, metadata)}``."""
    import onnx  # optional: only the weights conversion needs it


    path = root / "openwakeword" / "resources" / "models" / "embedding_model.onnx"
    if not path.is_file():
        raise DataError(f"{path} is missing; is this the openwakeword 0.4.0 wheel?")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:
        raise DataError(f"{path}: the model cannot be read ({str(exc).splitlines()[0][:120]}); "
                        "download the openwakeword wheel again") from None
    state = convert_onnx(graph)
    SpeechEmbeddingNet().load_state_dict(state)  # strict: every tensor
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"speech-embedding": (state, {"model": "speech-embedding", "onnx_sha256": digest})}


SOURCE = WeightsSource(
    name="speech-embedding", package="openwakeword", version="0.4.0", convert=convert_wheel, needs=("onnx",),
    licence="Google speech_embedding (TF Hub google/speech_embedding/1), Apache-2.0 per openWakeWord's README; the "
            "same README licenses its included pre-trained models CC BY-NC-SA 4.0; openWakeWord code Apache-2.0. "
            "From the PyPI wheel openwakeword==0.4.0, converted by fewshot-audio from the user's own download; "
            "not redistributed")
FRONT_END = FrontEndSpec(kind="speech-embedding", sample_rate=SR, n_bins=N_BANDS, window_samples=N_FFT + (FRAMES - 1) * HOP,
                     build=SpeechMel, frames=lambda n: 1 + (max(n, N_FFT) - N_FFT) // HOP,
                     fixed={"n_fft": N_FFT, "hop_length": HOP},
                     framing=PatchFraming(patch=FRAMES, hop=8, frame_hop=HOP, reach=N_FFT, centred=False),
                     signal_db=math.inf)  # every window: inside 5 s of silence any margin loses (33.3 -> 15.7 top-1 at
                                          # 30 dB on body percussion), on the bare sets it gains little (docs/results.md)
register(PretrainedModel(
    name="speech-embedding", front_end=FRONT_END, source=SOURCE, weights_file="speech-embedding",
    build=SpeechEmbeddingNet, description="Google speech embedding (keyword spotting, 96-d; 0.78 s windows at 16 kHz)",
    layers={"embedding": 96}, default_layer="embedding", auto_layers=("embedding",),
    auto_domain=("Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Speech synthesizer",
                 "Whispering")))
