"""How many are there, on real audio: the finch song's detections of one syllable (``fewshot-audio detect`` on
../shared/data/birdsong_gy6or6/episodes, both recordings' episodes of that syllable), 40 of them reviewed in the
stratified order (the reviewer simulated by the annotations: a detection is positive where it overlaps an annotated
event with IoU >= 0.3, the official metric's rule), and the summary's estimate of the true detections among all of
them against the count every detection's truth gives, and the annotated events. Repeated over ``--seeds`` stratified
draws for the interval's coverage on this source.

    python benchmarks/bench_review.py [--syllable auto] [--reviews 40] [--seeds 50] [--json benchmarks/results_review.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import FINCH as DATA
from common import events_of, iou

from fewshot_audio.review.density import stratified_estimate
from fewshot_audio.review.items import read_items
from fewshot_audio.review.order import ORDERS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--syllable", default="auto", help="a syllable letter, or auto: the one with the most detections")
    p.add_argument("--reviews", type=int, default=40)
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--json", default="benchmarks/results_review.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        det = Path(tmp) / "det.json"
        subprocess.run([sys.executable, "-m", "fewshot_audio", "detect", str(DATA), "--json", "--out", str(det),
                        "--quiet"], check=True)
        items = read_items(det, audio_root=DATA)
    syllable_of = lambda it: it.tag.split("__syllable_")[1]  # noqa: E731  (the episode's name: recording__syllable_x)
    counts = {s: sum(syllable_of(i) == s for i in items) for s in sorted({syllable_of(i) for i in items})}
    syllable = max(counts, key=counts.get) if args.syllable == "auto" else args.syllable
    mine = [i for i in items if syllable_of(i) == syllable]
    truth_events = {i.tag: events_of(DATA / f"{i.tag}.csv") for i in mine}
    truth = np.array([iou((i.start, i.end), truth_events[i.tag]) >= 0.3 for i in mine])
    annotated_after = sum(int((ev[:, 0] >= ev[4, 1]).sum()) for ev in truth_events.values())  # after the 5 examples
    order = ORDERS.get("stratified")()
    strata = order.strata(mine)
    runs = []
    for seed in range(args.seeds):
        reviewed = order.order(mine, seed=seed)[:args.reviews]
        e = stratified_estimate(strata, strata[reviewed], truth[reviewed])
        runs.append({"seed": seed, "total": round(e.total, 1), "low": round(e.low, 1), "high": round(e.high, 1)})
    first = runs[0]
    covered = float(np.mean([r["low"] <= truth.sum() <= r["high"] for r in runs]))
    result = {"syllable": syllable, "recordings": sorted(truth_events), "detections": len(mine), "reviews": args.reviews,
              "true_detections": int(truth.sum()), "annotated_events_after_examples": annotated_after,
              "strata_sizes": np.bincount(strata).tolist(), "seed0": first, "coverage": round(covered, 3),
              "mean_estimate": round(float(np.mean([r["total"] for r in runs])), 1),
              "mean_width": round(float(np.mean([r["high"] - r["low"] for r in runs])), 1), "seeds": args.seeds,
              "detections_per_syllable": counts}
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "detections_per_syllable"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
