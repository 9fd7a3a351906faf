"""Waveform against spectrogram as the data grows, on the shared real sets (``fewshot-audio datasize`` through the
library): SampleCNN and the musically motivated CNN under the ``--preset``'s budget rule, on FSDD's digits (all
3,000 clips: a seeded 30% held out, 5 to 210 training clips per digit) and body percussion (14 classes, 5 per class
and all). Results per set under ``--out`` (results.csv, .md, .png) and one JSON of all.

    python benchmarks/bench_datasize.py [--sets fsdd,body_percussion] [--preset cpu] [--out benchmarks/datasize]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from common import DATA

from fewshot_audio.studies.datasize import PRESETS, run_datasize
from fewshot_audio.studies.datasize_results import crossover, summarize

SETS = {"fsdd": ("digit", None), "body_percussion": (None, None)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--preset", default="cpu")
    p.add_argument("--out", default="benchmarks/datasize")
    p.add_argument("--json", default="benchmarks/results_datasize.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    preset = PRESETS.get(args.preset)
    for name in args.sets.split(","):
        label, fmt = SETS[name]
        t0 = time.perf_counter()
        rows = run_datasize(str(DATA / name), Path(args.out) / name, models=["samplecnn", "musically-motivated"],
                            preset=preset, device=torch.device("cpu"), label=label, format=fmt, quiet=True)
        summary = summarize(rows)
        results[name] = {"preset": args.preset, "summary": summary, "crossover": crossover(summary),
                         "seconds": round(time.perf_counter() - t0, 1), "runs": rows}
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(name, results[name]["crossover"], f"{results[name]['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
