"""PyTorch ports of the musicnn models (Pons and Serra, 2019) with their exact preprocessing.

The four released models -- ``MTT_musicnn``, ``MSD_musicnn``, ``MTT_vgg``, ``MSD_vgg`` -- ship as
TensorFlow 1 checkpoints inside the PyPI wheel ``musicnn==0.1.0`` (ISC licence, Copyright (c) 2019
Jordi Pons). :func:`convert_checkpoint` maps their tensors onto these modules, which reproduce the
original graphs: conv -> ReLU -> batch norm (epsilon 1e-3), also after the dense layer; TensorFlow's
SAME padding for the even temporal kernels (one more frame after than before); HWIO kernels; pooled
features flattened with max and mean interleaved per channel.

Inputs are ``(batch, 187, 96)`` patches (time x mel) of ``log10(10000 * mel + 1)`` where ``mel`` is
librosa's power mel spectrogram (16 kHz, n_fft 512, hop 256, 96 Slaney bands) cast to float16 and
back, computed by :func:`musicnn_logmel`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_audio.errors import DataError
from fewshot_audio.models.pretrained.tf_checkpoint import read_checkpoint
from fewshot_audio.specs import FrontEndSpec, PatchFraming, PretrainedModel, WeightsSource, register

SR, N_FFT, HOP, N_MELS, N_FRAMES = 16000, 512, 256, 96, 187
BN_EPS = 1e-3

MTT_LABELS = ['guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
              'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals',
              'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft',
              'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal',
              'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral']
MSD_LABELS = ['rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
              'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul',
              'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies',
              'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop',
              '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal',
              'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy']
MODELS = {"MTT_musicnn": MTT_LABELS, "MSD_musicnn": MSD_LABELS, "MTT_vgg": MTT_LABELS, "MSD_vgg": MSD_LABELS}


# ----------------------------------------------------------------------------- preprocessing
class MusicnnLogMel(nn.Module):
    """Batched musicnn input representation: ``(batch, samples)`` at 16 kHz -> ``(batch, frames, 96)``.

    Power mel spectrogram as ``librosa.feature.melspectrogram`` (Hann, centred, Slaney mel scale and
    norm, power 2), cast to float16 and back (as the models were trained), then ``log10(10000 x + 1)``
    computed in float32 (under numpy 2 the original's float16 arithmetic overflows).
    """

    def __init__(self):
        super().__init__()
        import librosa  # imported on use: its first import compiles numba code

        self.register_buffer("mel", torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS)).float(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """musicnn's input representation ``(batch, frames, 96)`` of waveforms ``(batch, samples)`` at 16 kHz."""
        spec = torch.stft(wave, n_fft=N_FFT, hop_length=HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)
        mel = torch.matmul(self.mel, spec.real**2 + spec.imag**2)
        mel = mel.to(torch.float16).to(torch.float32)
        return torch.log10(10000.0 * mel + 1.0).transpose(-1, -2)


def musicnn_logmel(audio: np.ndarray) -> np.ndarray:
    """``(frames, 96)`` musicnn representation of one 16 kHz signal."""
    with torch.no_grad():
        return MusicnnLogMel()(torch.from_numpy(np.asarray(audio, dtype=np.float32))[None])[0].numpy()


def patches(rep: np.ndarray, *, n_frames: int = N_FRAMES, hop: int | None = None) -> tuple[np.ndarray, bool]:
    """Split ``(frames, 96)`` into ``(n, n_frames, 96)`` patches as the original ``batch_data`` does
    (the last incomplete patch is dropped). A representation shorter than one patch is zero-padded
    to one patch; the second value says whether that happened."""
    hop = hop or n_frames
    if len(rep) < n_frames:
        return np.pad(rep, ((0, n_frames - len(rep)), (0, 0)))[None], True
    starts = range(0, len(rep) - n_frames + 1, hop)
    return np.stack([rep[s : s + n_frames] for s in starts]), False


# ----------------------------------------------------------------------------- models
def _bn(n: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(n, eps=BN_EPS)


def _conv_relu_bn_max(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(relu(conv(x))).amax(dim=3)``: the max over frequency of a front-end filter's map, ``(n, C, T)``.

    In eval mode ReLU and batch norm are monotone maps of each element, so they are applied after the
    max over frequency, on a map ``F`` times smaller. Where a channel's batch-norm scale is negative the
    map is decreasing and the min is wanted: those filters are run negated (exact in floating point)
    and their max negated back. The same element is selected and the same arithmetic done on it, so the
    result is bitwise equal to the direct formula (tested). In training, batch statistics need the map.
    """
    if bn.training:
        return bn(F.relu(conv(x))).amax(dim=3)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    sign = torch.where(scale < 0, -1.0, 1.0).to(x.dtype)
    y = F.conv2d(x, conv.weight * sign[:, None, None, None], conv.bias * sign)
    picked = y.amax(dim=3) * sign[None, :, None]
    return F.batch_norm(F.relu(picked), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class Musicnn(nn.Module):
    """musicnn: musically motivated front end (timbral 7x38 and 7x67 filters, temporal 128/64/32
    filters), dense mid end with residual connections, temporal pooling back end. Input ``(n, 187, 96)``.
    """

    def __init__(self, n_classes: int = 50, midend: int = 64, backend: int = 200):
        super().__init__()
        self.bn_input = _bn(1)
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, int(0.4 * N_MELS))), nn.Conv2d(1, 204, (7, int(0.7 * N_MELS)))])
        self.timbral_bn = nn.ModuleList([_bn(204), _bn(204)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.temporal_bn = nn.ModuleList([_bn(51) for _ in range(3)])
        self.mid = nn.ModuleList([nn.Conv1d(561, midend, 7), nn.Conv1d(midend, midend, 7), nn.Conv1d(midend, midend, 7)])
        self.mid_bn = nn.ModuleList([nn.BatchNorm1d(midend, eps=BN_EPS) for _ in range(3)])
        features = 561 + 3 * midend
        self.pool_bn = nn.BatchNorm1d(2 * features, eps=BN_EPS)
        self.dense = nn.Linear(2 * features, backend)
        self.dense_bn = nn.BatchNorm1d(backend, eps=BN_EPS)
        self.out = nn.Linear(backend, n_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All the original's outputs: ``taggram`` (sigmoid), ``logits``, ``timbral``/``temporal``/``cnn1..3``
        (``(n, time, channels)``), ``mean_pool``/``max_pool`` (``(n, 753)``) and ``penultimate`` (``(n, 200)``)."""
        h = self.bn_input(x.unsqueeze(1))  # (n, 1, T, F)
        padded = F.pad(h, (0, 0, 3, 3))
        timbral = [_conv_relu_bn_max(conv, bn, padded) for conv, bn in zip(self.timbral, self.timbral_bn)]
        temporal = []
        for conv, bn in zip(self.temporal, self.temporal_bn):
            k = conv.kernel_size[0]
            before = (k - 1) // 2  # TensorFlow SAME: the extra frame of an even kernel goes after
            temporal.append(_conv_relu_bn_max(conv, bn, F.pad(h, (0, 0, before, k - 1 - before))))
        front = torch.cat(timbral + temporal, dim=1)  # (n, 561, T)
        outs = [front]
        y = front
        for i, (conv, bn) in enumerate(zip(self.mid, self.mid_bn)):
            z = bn(F.relu(conv(F.pad(y, (3, 3)))))
            y = z if i == 0 else z + y
            outs.append(y)
        mid = torch.cat(outs, dim=1)  # (n, 753, T)
        max_pool, mean_pool = mid.amax(dim=2), mid.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # interleaved per channel
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.out(penultimate)
        t = lambda v: v.transpose(1, 2)  # noqa: E731 - to the original's (n, time, channels)
        return {"taggram": torch.sigmoid(logits), "logits": logits, "timbral": t(torch.cat(timbral, 1)),
                "temporal": t(torch.cat(temporal, 1)), "cnn1": t(outs[1]), "cnn2": t(outs[2]), "cnn3": t(outs[3]),
                "mean_pool": mean_pool, "max_pool": max_pool, "penultimate": penultimate}


class MusicnnVGG(nn.Module):
    """The VGG baseline released with musicnn: 5 x [3x3 conv (128) -> ReLU -> BN -> max-pool]. Input ``(n, 187, 96)``."""

    pools = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_classes: int = 50, filters: int = 128):
        super().__init__()
        self.bn_input = _bn(1)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)])
        self.bns = nn.ModuleList([_bn(filters) for _ in range(5)])
        self.out = nn.Linear(2 * 1 * filters, n_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named outputs (``taggram``, ``penultimate``, ``pool1``-``pool5``) of patches ``(n, 187, 96)``."""
        h = self.bn_input(x.unsqueeze(1))
        outs = {}
        for i, (conv, bn, (size, stride)) in enumerate(zip(self.convs, self.bns, self.pools)):
            h = F.max_pool2d(bn(F.relu(conv(h))), size, stride)
            outs[f"pool{i + 1}"] = h.permute(0, 2, 3, 1)  # NHWC, as the original
        logits = self.out(outs["pool5"].flatten(1))
        return {"taggram": torch.sigmoid(logits), "logits": logits, **outs,
                "penultimate": outs["pool5"].flatten(1)}


def build_model(name: str) -> nn.Module:
    """A fresh network (random weights) for musicnn model file ``name``: :class:`MusicnnVGG` for the ``*_vgg`` models,
    else :class:`Musicnn`."""
    return MusicnnVGG() if name.endswith("vgg") else Musicnn()


class MusicnnOnFeatures(Musicnn):
    """:class:`Musicnn` on the feature store's layout ``(n, 1, 96, frames)``; fully convolutional in time,
    so any number of frames goes through as it is (one window is one 187-frame patch)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return super().forward(x[:, 0].transpose(1, 2))


class MusicnnVGGOnFeatures(MusicnnVGG):
    """:class:`MusicnnVGG` on ``(n, 1, 96, frames)``: it needs exactly 187 frames (zero-padded or cut)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The VGG's named outputs for features ``(n, 1, 96, frames)``, each window padded or cut to 187 frames."""
        rep = x[:, 0].transpose(1, 2)[:, :N_FRAMES]
        return super().forward(F.pad(rep, (0, 0, 0, N_FRAMES - rep.shape[1])))


# ----------------------------------------------------------------------------- checkpoint conversion
def _bn_state(w: dict, scope: str, prefix: str) -> dict:
    return {f"{prefix}.weight": w[f"{scope}/gamma"], f"{prefix}.bias": w[f"{scope}/beta"],
            f"{prefix}.running_mean": w[f"{scope}/moving_mean"], f"{prefix}.running_var": w[f"{scope}/moving_variance"]}


def convert_checkpoint(name: str, weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the TensorFlow variables of model ``name`` onto the port's ``state_dict``."""
    state: dict[str, np.ndarray] = {}
    conv = lambda k: np.transpose(k, (3, 2, 0, 1))  # noqa: E731 - HWIO -> OIHW
    if name.endswith("musicnn"):
        state.update(_bn_state(weights, "batch_normalization", "bn_input"))
        for i, (tf_i, prefix) in enumerate([(0, "timbral.0"), (1, "timbral.1"), (2, "temporal.0"), (3, "temporal.1"),
                                            (4, "temporal.2")]):
            scope = "conv2d" if tf_i == 0 else f"conv2d_{tf_i}"
            state[f"{prefix}.weight"] = conv(weights[f"{scope}/kernel"])
            state[f"{prefix}.bias"] = weights[f"{scope}/bias"]
            bn_prefix = prefix.replace("timbral.", "timbral_bn.").replace("temporal.", "temporal_bn.")
            state.update(_bn_state(weights, f"batch_normalization_{i + 1}", bn_prefix))
        for j in range(3):
            k = weights[f"conv2d_{5 + j}/kernel"]  # (7, C_in, 1, C_out)
            state[f"mid.{j}.weight"] = np.transpose(k[:, :, 0, :], (2, 1, 0))
            state[f"mid.{j}.bias"] = weights[f"conv2d_{5 + j}/bias"]
            state.update(_bn_state(weights, f"batch_normalization_{6 + j}", f"mid_bn.{j}"))
        state.update(_bn_state(weights, "batch_normalization_9", "pool_bn"))
        state["dense.weight"], state["dense.bias"] = weights["dense/kernel"].T, weights["dense/bias"]
        state.update(_bn_state(weights, "batch_normalization_10", "dense_bn"))
        state["out.weight"], state["out.bias"] = weights["dense_1/kernel"].T, weights["dense_1/bias"]
    else:
        state.update(_bn_state(weights, "batch_normalization", "bn_input"))
        for i in range(5):
            state[f"convs.{i}.weight"] = conv(weights[f"{i + 1}CNN/kernel"])
            state[f"convs.{i}.bias"] = weights[f"{i + 1}CNN/bias"]
            state.update(_bn_state(weights, f"batch_normalization_{i + 1}", f"bns.{i}"))
        state["out.weight"], state["out.bias"] = weights["dense/kernel"].T, weights["dense/bias"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


# ----------------------------------------------------------------------------- registration
def convert_wheel(root: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """The four models of the unpacked musicnn 0.1.0 wheel at ``root``, converted and checked (strict load)."""


    package = root / "musicnn"
    out = {}
    for name, labels in MODELS.items():
        if not (package / name / ".index").is_file():
            raise DataError(f"{package / name} has no checkpoint (.index); is this the musicnn 0.1.0 wheel?")
        state = convert_checkpoint(name, read_checkpoint(f"{package / name}/"))
        build_model(name).load_state_dict(state)  # strict: every tensor mapped
        digest = hashlib.sha256((package / name / ".data-00000-of-00001").read_bytes()).hexdigest()
        out[name] = (state, {"model": name, "labels": labels, "data_sha256": digest})
    return out


SOURCE = WeightsSource(
    name="musicnn", package="musicnn", version="0.1.0", convert=convert_wheel,
    licence="musicnn models and weights: Copyright (c) 2019 Jordi Pons, ISC licence (LICENSE.md in the wheel); "
            "from the PyPI wheel musicnn==0.1.0, converted to PyTorch by fewshot-audio")
FRONT_END = FrontEndSpec(kind="musicnn", sample_rate=SR, n_bins=N_MELS, window_samples=(N_FRAMES - 1) * HOP,
                     build=lambda: _StoreLayout(MusicnnLogMel()), frames=lambda n: 1 + n // HOP, fixed={"n_fft": N_FFT, "hop_length": HOP},
                     framing=PatchFraming(patch=N_FRAMES, hop=N_FRAMES, frame_hop=HOP, reach=N_FFT, centred=True))
MUSICNN_LAYERS = {"penultimate": 200, "mean_pool": 753, "max_pool": 753, "taggram": 50, "timbral": 2 * 408,
                  "temporal": 2 * 153, "cnn1": 128, "cnn2": 128, "cnn3": 128}
VGG_LAYERS = {"penultimate": 256, "taggram": 50, **{f"pool{i}": 256 for i in range(1, 6)}}


class _StoreLayout(nn.Module):
    """The musicnn front end in the feature store's layout ``(batch, 1, 96, frames)``."""

    def __init__(self, front: nn.Module):
        super().__init__()
        self.front = front

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.front(wave).transpose(1, 2).unsqueeze(1)


for _name, _model in {"musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn", "vgg-mtt": "MTT_vgg",
                      "vgg-msd": "MSD_vgg"}.items():
    _vgg = _model.endswith("vgg")
    register(PretrainedModel(
        name=_name, front_end=FRONT_END, source=SOURCE, weights_file=_model,
        description=f"musicnn 0.1.0 {_model} (music tagging, {'MagnaTagATune' if _model.startswith('MTT') else 'Million Song Dataset'}, "
                    "2019; 3 s windows at 16 kHz)",
        build=MusicnnVGGOnFeatures if _vgg else MusicnnOnFeatures,
        layers=VGG_LAYERS if _vgg else MUSICNN_LAYERS, default_layer="pool4" if _vgg else "mean_pool",
        tags_layer="taggram", cpu_batch=1, auto_layers=("mean_pool",) if _name == "musicnn-mtt" else (),
        auto_note="" if _name == "musicnn-mtt" else "musicnn-mtt stands for the musicnn family in auto",
        auto_domain=("Music", "Musical instrument", "Singing", "Guitar", "Piano", "Drum kit", "Orchestra")
        if _name == "musicnn-mtt" else ()))
