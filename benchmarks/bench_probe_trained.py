"""Random against trained on the shared real sets: the probe (random weights + nested SVM) and the same
architectures trained on the same folds (``fewshot-audio probe --trained`` through the library), both at
``--maps`` feature maps, and Spearman's rank correlation between them with a paired clip-bootstrap 95% CI. Also the
correlation of the paper-width probe (``benchmarks/results_probe.json``, 3,585 maps) with the trained ranking (a point
estimate: those rows predate per-clip answers).

    python benchmarks/bench_probe_trained.py [--sets a,b] [--maps 256] [--epochs 40] [--out benchmarks/probe_trained]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from common import DATA

from fewshot_audio.studies.architectures import ARCHITECTURES
from fewshot_audio.studies.probe import run_probe
from fewshot_audio.studies.ranking import spearman
from fewshot_audio.studies.supervised import Budget
from fewshot_audio.studies.trained import agreement_of, run_trained

SETS = ("body_percussion", "kenney_impact", "speech_commands_30")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--architectures", default=",".join(ARCHITECTURES))
    p.add_argument("--maps", type=int, default=256)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", type=int, default=3, help="random networks per architecture")
    p.add_argument("--out", default="benchmarks/probe_trained")
    p.add_argument("--json", default="benchmarks/results_probe_trained.json")
    args = p.parse_args(argv)
    names = args.architectures.split(",")
    results = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    paper = json.loads(Path("benchmarks/results_probe.json").read_text())
    for name in args.sets.split(","):
        out = Path(args.out) / name
        random = run_probe(str(DATA / name), out, architectures=names, seeds=args.seeds, maps=args.maps)
        trained = run_trained(str(DATA / name), out, architectures=names, maps=args.maps,
                              budget=Budget(epochs=args.epochs), device=torch.device("cpu"))
        agreement = agreement_of(out, title=f"{name}: random against trained ({args.maps} maps)")
        wide = {r["architecture"]: r["accuracy"] for r in paper.get(name, [])}
        shared = [r["architecture"] for r in trained if r["architecture"] in wide]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "clip_correct"} for r in rows]  # noqa: E731
        results[name] = {"random": strip(random), "trained": strip(trained), "agreement": agreement,
                         "paper_width_spearman": round(spearman(np.array([wide[n] for n in shared]), np.array(
                             [r["accuracy"] for r in trained if r["architecture"] in wide])), 4) if shared else None,
                         "maps": args.maps, "epochs": args.epochs}
        Path(args.json).write_text(json.dumps(results, indent=1))
        if agreement:
            print(name, "spearman", agreement["spearman"], agreement["ci95"], "p", agreement["p_value"],
                  "paper-width", results[name]["paper_width_spearman"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
