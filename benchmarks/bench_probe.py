"""The random-weight architecture probe on the shared real sets (``fewshot-audio probe`` through the library).

For each set under ../shared/data: every architecture and the MFCC row, ``--seeds`` random networks each, an SVM
chosen inside the training folds (nested; stratified 5-fold, the sets have no official folds), the paper's best
cross-validation score beside it, and the seconds of each row (features and classifier). FSDD is its digits on a
seeded subset of ``--fsdd-per-class`` clips per digit. Results per set under ``--out`` (results.csv, .md, .png) and
one JSON of all.

    python benchmarks/bench_probe.py [--sets a,b] [--seeds 3] [--out benchmarks/probe] [--json benchmarks/results_probe.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import DATA

from fewshot_audio.data.adapters import build_manifest, validate_manifest
from fewshot_audio.studies.architectures import ARCHITECTURES
from fewshot_audio.studies.probe import run_probe

SETS = ("body_percussion", "kenney_impact", "speech_commands_30", "fsdd")


def fsdd_subset(per_class: int, folder: Path) -> Path:
    """A CSV of ``per_class`` seeded FSDD clips per digit."""
    clips = validate_manifest(build_manifest(DATA / "fsdd", label="digit")).clips
    labels = np.array([c.labels[0] for c in clips])
    rng = np.random.default_rng(0)
    keep = sorted(int(i) for d in np.unique(labels) for i in rng.choice(np.flatnonzero(labels == d), per_class,
                                                                         replace=False))
    path = folder / "fsdd_digits.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows([(clips[i].path, clips[i].labels[0]) for i in keep])
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--architectures", default=",".join(ARCHITECTURES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--fsdd-per-class", type=int, default=100)
    p.add_argument("--out", default="benchmarks/probe")
    p.add_argument("--json", default="benchmarks/results_probe.json")
    args = p.parse_args(argv)
    results = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            dataset = fsdd_subset(args.fsdd_per_class, Path(tmp)) if name == "fsdd" else DATA / name
            rows = run_probe(str(dataset), Path(args.out) / name, architectures=args.architectures.split(","),
                             seeds=args.seeds, folds="auto")
            results[name] = [{k: v for k, v in r.items() if k != "clip_correct"} for r in rows]
            Path(args.json).write_text(json.dumps(results, indent=1))
            for r in rows:
                print(name, r["architecture"], f"{100 * r['accuracy']:.1f} ± {100 * r['ci95']:.1f}",
                      f"best CV {100 * r['best_cv_accuracy']:.1f}", f"{r['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
