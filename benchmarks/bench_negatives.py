"""A one-tag detector from a few examples and negatives (``adapt --negatives``), on real recordings.

For each seeded draw: one class of the set is the tag, ``--examples`` of its clips are the examples and
``--negatives`` clips drawn from the other classes are the negatives (``Tagger.from_embeddings``, the code
path of ``adapt``). Every other clip is scored: the recall is the fraction of the tag's own held-out clips
at or above its threshold, the rejection the fraction of the other classes' held-out clips below it. Every
file is embedded once.

    python benchmarks/bench_negatives.py [--set body_percussion] [--backbone aisfx] [--draws 10] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA

from fewshot_audio.data.adapters import build_manifest, validate_manifest
from fewshot_audio.embedding import embed_files, load_backbone
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.tagging.tagger import Tagger


def draws(labels: np.ndarray, *, n: int, examples: int, negatives: int):
    """(tag, example idx, negative idx, held-out positives, held-out others) per seeded draw; the tag cycles
    through the classes in a seeded order."""
    classes = np.unique(labels)
    order = np.random.default_rng(7).permutation(classes)
    for s in range(n):
        rng = np.random.default_rng([s, 23])
        tag = order[s % len(order)]
        pos = rng.choice(np.nonzero(labels == tag)[0], examples, replace=False)
        neg = rng.choice(np.nonzero(labels != tag)[0], negatives, replace=False)
        rest = np.setdiff1d(np.arange(len(labels)), np.concatenate([pos, neg]))
        yield tag, pos, neg, rest[labels[rest] == tag], rest[labels[rest] != tag]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="body_percussion", help="a set under ../shared/data")
    p.add_argument("--backbone", default="aisfx")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--examples", type=int, default=3)
    p.add_argument("--negatives", type=int, default=20)
    p.add_argument("--out", default="benchmarks/results_negatives.json")
    args = p.parse_args()
    manifest = validate_manifest(build_manifest(DATA / args.set))
    paths = [c.path for c in manifest.clips]
    labels = np.array([c.labels[0] for c in manifest.clips])
    device = torch.device("cpu")
    t0 = time.perf_counter()
    bb = load_backbone(args.backbone, device=device, durations=[c.duration for c in manifest.clips])
    windows, _, levels, errors = embed_files(bb, [Path(x) for x in paths], device=device, quiet=True)
    assert not any(errors), [e for e in errors if e]
    embed_s = time.perf_counter() - t0
    recall, rejected, rows = [], [], []
    for tag, pos, neg, held_pos, held_neg in draws(labels, n=args.draws, examples=args.examples,
                                                   negatives=args.negatives):
        idx = np.concatenate([pos, neg])
        tagger = Tagger.from_embeddings(bb, [windows[i] for i in idx], paths=[paths[i] for i in idx],
                                        labels=[[tag]] * len(pos) + [[]] * len(neg), tags=[str(tag)],
                                        levels=[levels[i] for i in idx])
        th = float(tagger.thresholds[0])
        score = lambda ids: np.array([float(tagger.score_embeddings(windows[i], levels[i])[0][0]) for i in ids])  # noqa: E731
        r, j = float(np.mean(score(held_pos) >= th)), float(np.mean(score(held_neg) < th))
        recall.append(r)
        rejected.append(j)
        rows.append({"tag": str(tag), "threshold": round(th, 4), "recall": round(r, 3), "rejected": round(j, 3),
                     "held_out_positives": len(held_pos), "held_out_others": len(held_neg)})
        print(rows[-1], flush=True)
    out = {"set": args.set, "backbone": args.backbone, "draws": args.draws, "examples": args.examples,
           "negatives": args.negatives, "recall": mean_ci95(np.array(recall)),
           "rejected": mean_ci95(np.array(rejected)), "embed_seconds": round(embed_s, 1), "rows": rows,
           "command": f"python benchmarks/bench_negatives.py --set {args.set} --backbone {args.backbone} "
                      f"--draws {args.draws} --examples {args.examples} --negatives {args.negatives}",
           "date": time.strftime("%Y-%m-%d")}
    print(f"recall {100 * out['recall'][0]:.1f} ± {100 * out['recall'][1]:.1f}, rejected "
          f"{100 * out['rejected'][0]:.1f} ± {100 * out['rejected'][1]:.1f} (95% CI over {args.draws} draws)")
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
