"""Adapting to a new vocabulary on FSDD: tagging accuracy, rejection of an unseen class, recall@2 on
mixtures, and files/s, with a backbone meta-trained without the vocabulary's classes.

The backbone is a run of ``configs/fsdd.yaml`` (60 digit-by-speaker classes; it trains on the 36 base
classes). The vocabulary is 10 of the 15 novel classes with 5 examples each; the other 5 novel classes
are never seen and should be rejected ("none of these tags").

Usage: python benchmarks/bench_tagging.py --run RUN_DIR [--fsdd ../shared/data/fsdd] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from fewshot_audio.data import build_manifest
from fewshot_audio.tagging.tagger import Tagger


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="run folder of configs/fsdd.yaml")
    ap.add_argument("--fsdd", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"))
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--mixtures", type=int, default=200)
    ap.add_argument("--head", default="prototypes")
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    split = yaml.safe_load((Path(args.run) / "split.yaml").read_text())
    novel = sorted(split["novel"])
    order = rng.permutation(len(novel))
    vocab, unseen = sorted(novel[i] for i in order[:10]), sorted(novel[i] for i in order[10:])
    manifest = build_manifest(args.fsdd, format="fsdd", label="digit-speaker")
    by_class: dict[str, list[str]] = {}
    for c in manifest.clips:
        by_class.setdefault(c.labels[0], []).append(c.path)
    with tempfile.TemporaryDirectory() as tmp:
        support, held = Path(tmp) / "support", {}
        for tag in vocab:
            files = list(rng.permutation(by_class[tag]))
            (support / tag).mkdir(parents=True)
            for f in files[: args.shots]:
                (support / tag / Path(f).name).symlink_to(f)
            held[tag] = files[args.shots :]
        t0 = time.perf_counter()
        tagger = Tagger.adapt(support, backbone=args.run, head=args.head, quiet=True)
        adapt_s = time.perf_counter() - t0
        files = [f for tag in vocab for f in held[tag]]
        truth = [tag for tag in vocab for _ in held[tag]]
        tagger.tag(files[:8], quiet=True)  # warm-up
        t0 = time.perf_counter()
        results = tagger.tag(files, quiet=True)
        tag_s = time.perf_counter() - t0
        top1 = np.mean([max(r.scores, key=r.scores.get) == t for r, t in zip(results, truth)])
        recall = np.mean([t in r.tags for r, t in zip(results, truth)])
        exact = np.mean([r.tags == [t] for r, t in zip(results, truth)])
        unseen_files = [f for c in unseen for f in by_class[c]]
        rejected = np.mean([not r.tags for r in tagger.tag(unseen_files, quiet=True)])
        # mixtures of two held-out clips of different tags
        mix_dir = Path(tmp) / "mix"
        mix_dir.mkdir()
        pairs = []
        for m in range(args.mixtures):
            a, b = rng.choice(len(vocab), size=2, replace=False)
            fa, fb = rng.choice(held[vocab[a]]), rng.choice(held[vocab[b]])
            xa, sr = sf.read(fa, dtype="float32")
            xb, _ = sf.read(fb, dtype="float32")
            n = max(len(xa), len(xb))
            x = np.pad(xa / (np.abs(xa).max() + 1e-9), (0, n - len(xa))) + np.pad(xb / (np.abs(xb).max() + 1e-9), (0, n - len(xb)))
            sf.write(mix_dir / f"{m:04d}.wav", 0.5 * x, sr)
            pairs.append({vocab[a], vocab[b]})
        mixed = tagger.tag(sorted(mix_dir.glob("*.wav")), quiet=True)
        recall2 = np.mean([len(p & set(sorted(r.scores, key=r.scores.get, reverse=True)[:2])) / 2
                           for r, p in zip(mixed, pairs)])
    out = {"backbone_run": args.run, "head": args.head, "vocabulary": vocab, "unseen": unseen, "shots": args.shots,
           "held_out_files": len(files), "top1_accuracy": float(top1), "recall_at_threshold": float(recall),
           "exactly_the_right_tag": float(exact), "unseen_files": len(unseen_files),
           "unseen_rejection_rate": float(rejected), "mixtures": args.mixtures, "mixture_recall_at_2": float(recall2),
           "adapt_seconds": round(adapt_s, 2), "files_per_second": len(files) / tag_s}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
