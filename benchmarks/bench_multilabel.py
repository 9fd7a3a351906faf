"""Multi-label few-shot tagging on real recordings (issue #12): every FSDD clip carries two true tags, its
digit and its speaker, and `train` / `compare` run with --multi-label on them.

    python benchmarks/bench_multilabel.py [--episodes 300] [--out benchmarks/results_multilabel_fsdd_cpu.json]

The dataset is a CSV written to a temporary folder (`path,labels` with `digit-N;speaker-NAME`, absolute
paths into ../shared/data/fsdd; nothing is copied). 16 tags, split by a fixed split file: base = digits
0-5 and speakers george, jackson, nicolas, theo (training sees only the 1,200 clips whose two tags are
both base tags); val = digit 6, digit 7, speaker lucas; novel = digit 8, digit 9, speaker yweweler.
A novel 3-way episode therefore always mixes two digit tags and one speaker tag, and a query spoken
by yweweler saying 8 or 9 is positive for two of them.

Measured, on the same 1,000 frozen novel episodes per shot count:
* `train --multi-label` (prototypical / Conv4 meta-trained on the base tags, 5-shot): mAP, micro and macro
  F1 at the probability threshold chosen on the validation episodes, with the whole-clip MFCC
  prototypes (`prototypical/mfcc`) scored by the same run;
* `compare --multi-label` at 1 and 5 shots: the MFCC rows (prototypes, SVM) and the pretrained aisfx
  embedding (`transfer-proto@aisfx`, where its weights are fetched);
* the floors on those episodes: the mAP of random scores (far above 0 here: 3 tags, 1.2 positive per query)
  and the micro F1 of giving every query every tag.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
SPLIT = {"base": [f"digit-{d}" for d in range(6)] + [f"speaker-{s}" for s in ("george", "jackson", "nicolas", "theo")],
         "val": ["digit-6", "digit-7", "speaker-lucas"], "novel": ["digit-8", "digit-9", "speaker-yweweler"]}


def write_dataset(folder: Path) -> tuple[Path, Path]:
    lines = ["path,labels"]
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, _ = wav.stem.split("_")
        lines.append(f"{wav},digit-{digit};speaker-{speaker}")
    (folder / "fsdd-digit-speaker.csv").write_text("\n".join(lines) + "\n")
    (folder / "split.yaml").write_text(yaml.safe_dump(SPLIT, sort_keys=False))
    return folder / "fsdd-digit-speaker.csv", folder / "split.yaml"


def floors(config, shots: int) -> dict:
    """On the frozen novel episodes of ``shots``: the mean mAP of random scores (20 draws) and the micro F1 of
    giving every query every tag (what a threshold too low to decide anything scores)."""
    from fewshot_audio.fewshot.dataset import config_split, load_config_data
    from fewshot_audio.fewshot.metrics import episode_average_precision, episode_f1
    from fewshot_audio.fewshot.training import frozen_episodes

    data = load_config_data(config, quiet=True)
    eps, _ = frozen_episodes(data, config_split(data, config), split_name="novel", n_way=config.ways, n_shot=shots,
                             n_query=config.queries, n_episodes=config.test_episodes, episodes_dir=config.episodes_dir)
    targets = eps.query_targets.flatten(1, 2)
    g = torch.Generator().manual_seed(0)
    random_map = float(torch.stack([episode_average_precision(torch.rand(targets.shape, generator=g), targets).mean()
                                    for _ in range(20)]).mean())
    micro_all = float(episode_f1(torch.ones(targets.shape), targets, 0.5)[0].mean())
    return {"random_scores_mAP": random_map, "every_tag_micro_f1": micro_all}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=300, help="meta-training episodes of the Conv4 run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_multilabel_fsdd_cpu.json"))
    args = ap.parse_args()
    if not FSDD.is_dir():
        print(f"no FSDD recordings at {FSDD}", file=sys.stderr)
        return 1
    from fewshot_audio.config import TrainConfig, config_from_dict
    from fewshot_audio.fewshot.compare import compare, pretrained_rows
    from fewshot_audio.fewshot.training import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_path, split_path = write_dataset(tmp)
        base = TrainConfig().to_dict()
        base.update(dataset=str(csv_path), format="csv", multi_label=True, split_file=str(split_path), ways=3, shots=5,
                    queries=15, channels=32, episodes=args.episodes, val_every=100, val_episodes=200,
                    test_episodes=1000, episodes_dir=str(tmp / "episodes"), out=str(tmp / "run"),
                    features={**base["features"], "sample_rate": 8000, "duration": 1.0, "n_fft": 256,
                              "hop_length": 128, "n_mels": 40})
        config = config_from_dict(base)
        t0 = time.perf_counter()
        run = train(config, quiet=True)
        train_s = time.perf_counter() - t0
        extra, missing = pretrained_rows(("transfer-proto", "transfer-logreg"))
        rows = compare(config_from_dict(base), strategies=["prototypical@mfcc", "mfcc-svm", *[r for r in extra if "aisfx" in r]],
                       shots=[1, 5], out=tmp / "compare", quiet=True)
        floor = {k: floors(config_from_dict(base), k) for k in (1, 5)}
        keep = ("mAP", "ci95", "micro_f1", "micro_f1_ci95", "macro_f1", "macro_f1_ci95", "top1_hit", "threshold")
        result = {
            "dataset": "fsdd digit + speaker tags (3,000 clips, 2 tags each)", "split": SPLIT,
            "train": {"episodes": args.episodes, "seconds": round(train_s, 1),
                      "test": {k: run["test"][k] for k in keep}, "baseline_mfcc": {k: run["baseline"][k] for k in keep}},
            "compare": [{k: r[k] for k in ("strategy", "backbone", "shots", "accuracy", "ci95", "metric", "eval_seconds")}
                        for r in rows],
            "floors": floor, "pretrained_missing": missing, "episodes": 1000, "ways": 3, "queries": 15,
            "torch": torch.__version__, "device": "cpu", "date": time.strftime("%Y-%m-%d")}
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
