"""musicnn ports: error against the original TensorFlow models, and which embedding layer transfers
best (frozen prototypes, 5-way 5-shot, frozen novel-class episodes). Embedding throughput of every
pretrained model is measured by benchmarks/bench_embed.py.

Needs the converted weights (fewshot-audio weights fetch musicnn).
Usage: python benchmarks/bench_musicnn.py [--fsdd ../shared/data/fsdd] [--episodes 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from common import musicnn_original  # noqa: E402
from reference_signals import signals  # noqa: E402

from fewshot_audio import specs as registry  # noqa: E402
from fewshot_audio.config import FeatureConfig  # noqa: E402
from fewshot_audio.fewshot.dataset import load_labelled_features, resolve_split  # noqa: E402
from fewshot_audio.fewshot.metrics import episode_accuracies, mean_ci95  # noqa: E402
from fewshot_audio.fewshot.strategies import Prototypical  # noqa: E402
from fewshot_audio.fewshot.training import frozen_episodes  # noqa: E402
from fewshot_audio.models.backbones.pretrained import pool_output  # noqa: E402
from fewshot_audio.models.pretrained import musicnn as mn  # noqa: E402
from fewshot_audio.models.pretrained.weights import load_model  # noqa: E402


def errors() -> dict:
    ref = np.load(ROOT / "tests" / "fixtures" / "musicnn_reference.npz")
    out = {}
    for name in mn.MODELS:
        model, _ = musicnn_original(name)
        worst = {"taggram": 0.0, "penultimate": 0.0}
        for sig, x in signals().items():
            p, _ = mn.patches(mn.musicnn_logmel(x))
            with torch.no_grad():
                o = model(torch.from_numpy(p))
            for key in worst:
                r = ref[f"{name}/{sig}/{key}"]
                worst[key] = max(worst[key], float(np.abs(o[key].numpy() - r).max() / np.abs(r).max()))
        out[name] = worst
    return out


def layers(dataset: str | None, label: str | None, episodes: int, duration: float) -> dict:
    """Every layer of every model scored on the same frozen episodes; each network runs once per clip
    (on its loudest window of ``duration`` seconds)."""
    features = dataclasses.replace(FeatureConfig.of_front_end(registry.get("musicnn-mtt").front_end), duration=duration)
    data = load_labelled_features(dataset, features=features, format="fsdd" if label else None, label=label, quiet=True)
    split = resolve_split(data, ratios=[0.6, 0.15, 0.25], seed=0, split_file=None)
    eps, _ = frozen_episodes(data, split, split_name="novel", n_way=5, n_shot=5, n_query=15, n_episodes=episodes,
                             episodes_dir=str(ROOT / "episodes"))
    dev = data.device_data(device=torch.device("cpu"))
    clips, inverse = torch.unique(torch.cat([eps.support.flatten(), eps.query.flatten()]), return_inverse=True)
    out = {}
    for variant in ("musicnn-mtt", "musicnn-msd", "vgg-mtt", "vgg-msd"):
        names = ("penultimate", "mean_pool", "max_pool", "taggram", "cnn3", "timbral", "temporal") \
            if variant.startswith("musicnn") else ("penultimate", "pool3", "pool4", "taggram")
        net, _ = load_model(registry.get(variant))
        t0 = time.perf_counter()
        with torch.no_grad():
            outs = [net(dev.eval_inputs(c)) for c in clips.split(64)]
        seconds = time.perf_counter() - t0
        for layer in names:
            z = torch.cat([pool_output(o[layer]) for o in outs])
            zs = z[inverse[: eps.support.numel()]].view(*eps.support.shape, -1)
            zq = z[inverse[eps.support.numel():]].view(len(eps), -1, z.shape[-1])
            scores = Prototypical.classify(None, zs, zq)
            mean, ci = mean_ci95(episode_accuracies(scores, eps.query.shape[2]).numpy())
            out[f"{variant}:{layer}"] = {"accuracy": mean, "ci95": ci}
            print(dataset or "builtin", variant, layer, f"{100 * mean:.2f} ± {100 * ci:.2f}", flush=True)
        out[f"{variant}:embed_seconds"] = {"clips": len(clips), "seconds": round(seconds, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fsdd", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    res = {"max_relative_error": errors()}
    print(json.dumps(res), flush=True)
    res["layers_builtin"] = layers(None, None, args.episodes, 1.0)
    if Path(args.fsdd).is_dir():
        res["layers_fsdd_digit_speaker"] = layers(args.fsdd, "digit-speaker", args.episodes, 1.0)
    if args.json:
        from fewshot_audio.util.io import atomic_write_json

        atomic_write_json(args.json, res)


if __name__ == "__main__":
    main()
