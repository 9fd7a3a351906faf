"""The paper's MFCC floor in the low-data protocol: the toolkit's ``mfcc-1nn`` row next to the whole-clip recipe.

For each set under ../shared/data, ``compare --protocol low-data --strategies mfcc-1nn`` runs through the
library; then, on the very same training pool, test split and seeded support draws
(:func:`fewshot_audio.fewshot.compare.low_data_support`), the recipes the toolkit's row must match: mean and
standard deviation over the whole clip of 20 MFCCs (:func:`fewshot_audio.fewshot.baselines.whole_clip_mfcc`) with
1-NN by Euclidean distance, in the raw feature space and z-scored with the support set's statistics, with
librosa's default frames (2048 samples every 512) and with the simplest recipe's (issue 28: 512-sample frames
every 10 ms at 16 kHz, z-scored with the labelled examples' statistics). Accuracy is averaged over the draws
(mean ± 95% CI over draws).

    python benchmarks/bench_mfcc_floor.py [--sets a,b] [--shots 1,3,5] [--draws 10] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import DATA, whole_clip_mfcc

from fewshot_audio.config import TrainConfig
from fewshot_audio.fewshot.compare import compare, low_data_split, low_data_support
from fewshot_audio.fewshot.dataset import load_config_data
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.fewshot.strategies.base import squared_distances
from fewshot_audio.fewshot.strategies.regularized import MFCCNearestNeighbour

SETS = {"body_percussion": None, "kenney_impact": None, "speech_commands_30": None, "fsdd": "digit"}


def one_nn(support: np.ndarray, labels: np.ndarray, query: np.ndarray, *, zscore: bool) -> np.ndarray:
    if zscore:
        mean, std = support.mean(0), support.std(0) + 1e-6
        support, query = (support - mean) / std, (query - mean) / std
    d = ((query[:, None, :] - support[None]) ** 2).sum(-1)
    return labels[d.argmin(1)]


def raw_1nn(self, zs, zq):
    """mfcc-1nn before issue 28: distances between the raw statistics."""
    n_ep, n_way, n_shot, dim = zs.shape
    d = squared_distances(zq, zs.reshape(n_ep, n_way * n_shot, dim))
    return -d.view(n_ep, -1, n_way, n_shot).amin(-1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--shots", default="1,2,3,5", help="shot counts; each set runs those its smallest class allows")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--strategies", default="mfcc-1nn")
    p.add_argument("--raw-1nn", action="store_true",
                   help="ablation: mfcc-1nn on the raw statistics (the row before issue 28)")
    p.add_argument("--signal-db", type=float, default=None,
                   help="features.signal_db of the toolkit's rows (default the config's; inf: pool every window)")
    p.add_argument("--out", default="benchmarks/results_mfcc_floor.json")
    args = p.parse_args(argv)
    shots = [int(k) for k in args.shots.split(",")]
    if args.raw_1nn:
        MFCCNearestNeighbour.classify = raw_1nn
    results = {}
    for name in args.sets.split(","):
        data = load_config_data(TrainConfig(dataset=str(DATA / name), label=SETS[name]), quiet=True)
        pool, test = low_data_split(data, None)
        classes = sorted(np.unique(data.labels[pool]).tolist())
        fits = [k for k in shots if k <= np.bincount(data.labels[pool])[classes].min()]  # every class has k clips
        config = TrainConfig(dataset=str(DATA / name), label=SETS[name], shots=fits[0])
        if args.signal_db is not None:
            config.features = replace(data.features, signal_db=args.signal_db)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rows = compare(config, strategies=args.strategies.split(","), shots=fits, out=tmp,
                           protocol="low-data", draws=args.draws, quiet=True)
        toolkit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recipes = {"whole-clip mfcc 1-nn": np.stack([whole_clip_mfcc(c.path) for c in data.manifest.clips]),
                   "recipe 512/10ms 1-nn": np.stack([whole_clip_mfcc(c.path, frame_samples=512, hop_samples=160)
                                                    for c in data.manifest.clips])}
        res = {"clips": int((data.labels >= 0).sum()), "classes": len(classes), "test_clips": len(test),
               "window_s": data.features.duration, "toolkit_seconds": round(toolkit_s, 1)}
        for k in fits:
            draws = low_data_support(data, pool, classes, shots=k, draws=args.draws)
            for recipe, feats in recipes.items():
                for zscore in (False, True):
                    accs = [np.mean(one_nn(feats[d.reshape(-1)], data.labels[d.reshape(-1)], feats[test],
                                           zscore=zscore) == data.labels[test]) for d in draws]
                    res[f"{recipe}{' z-scored' if zscore else ''} | {k}"] = mean_ci95(np.array(accs))
            for r in rows:
                if int(r["shots"]) == k:
                    res[f"toolkit {r['strategy']} | {k}"] = (float(r["accuracy"]), float(r["ci95"]))
        res["reference_seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = res
        print(name, json.dumps(res), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def table(results: dict) -> str:
    keys = sorted({k.split(" | ")[0] for r in results.values() for k in r if " | " in k})
    shots = sorted({int(k.split(" | ")[1]) for r in results.values() for k in r if " | " in k})
    lines = ["| set | row | " + " | ".join(f"{k}-shot" for k in shots) + " |", "|---|---|" + "---|" * len(shots)]
    for name, r in results.items():
        for key in keys:
            cells = [r.get(f"{key} | {k}") for k in shots]
            lines.append(f"| {name} | {key} | " + " | ".join("n/a" if c is None else f"{100 * c[0]:.1f} ± {100 * c[1]:.1f}"
                                                             for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
